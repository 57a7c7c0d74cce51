"""Carry a family member away: standalone PyTorch source, ONNX, torch.export and weights."""
