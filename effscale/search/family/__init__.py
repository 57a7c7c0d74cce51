"""Family emission and calibration: B0..B7 from (α, β, γ), each member built and measured, the
released EfficientNet table, and members re-sized to come nearest target^φ in measured cost."""
