"""The proxy trainer on a GPU: throughput against a plain timm-style loop with an MFU estimate, and
fractional packing (k trials sharing one GPU against one at a time).

    .venv/bin/python benchmarks/bench_gpu.py [--peak-tflops T] [--steps 40] [--rounds 3] [--pack 2,4]

Needs CUDA: without it, it says so in one line and exits 2 (``--cpu-smoke`` runs the same code
paths on the CPU at toy sizes, to check the script itself; its figures mean nothing).

**(a) Throughput** -- efficientnet_b0 at 224 px and resnet18 at 32 px (``--throughput``), each at
``--batch-size``: `train_proxy`'s images/s against a plain timm-style loop. Both train the same
initial weights on the same data, already on the device, at the same batch, with SGD-Nesterov,
bf16 autocast and channels_last (and ``torch.compile`` for both with ``--compile``). The plain loop
is the generous side: its images are pre-resized, pre-normalised float tensors and it does no
augmentation, no schedule and no divergence check; `train_proxy` does all of those. Both alternate
for ``--rounds`` rounds after an untimed warm-up of each; the figure is best-of-rounds over
best-of-rounds (other jobs only ever slow a measurement down). Evaluation is outside both timings
(`train_proxy` reports training seconds only).

MFU = training FLOPs per image x images/s / the GPU's peak dense bf16 FLOP/s, where training FLOPs
per image = 3 (forward + backward) x 2 x `effscale.models.measure_cost`'s figure: effscale counts one
multiply-add as one flop (fvcore's convention), peak FLOP/s tables count it as two. The peak comes
from `PEAK_BF16_TFLOPS` by device name, or ``--peak-tflops``; unknown devices print no MFU.

**(b) Packing** -- what ``--gpus-per-trial`` below 1 buys. A fixed list of trials (`PACK_GRID`:
four (depth, width, resolution) points of ``--pack-model`` near ``--pack-resolution``, each a full
`train_proxy` run of ``--pack-steps`` steps: model built, data resized, trained, evaluated) runs
once one trial at a time in one process, and once spread over k processes sharing the GPU for
each k in ``--pack`` -- separate processes, as Ray runs fractional-GPU trials. (Not CUDA streams
in one process: `train_proxy` synchronises the device at each epoch's edges, and the trials would
share one GIL.) Every process sets up (CUDA context, data, a warm-up trial) before a barrier; the
clock runs from the barrier to the last trial's end. The figure is trials/s, and its ratio against
one at a time in the same run.

Each figure is one line with its ratio against the baseline measured in the same run.

Last run: none on a GPU yet (written on a CPU-only machine; ``--cpu-smoke`` passed there). Record
the first GPU run's lines here, as the trainer's module header does for the CPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Peak dense (no sparsity) bf16 tensor-core TFLOP/s by device name, from the vendors' data sheets.
# Matched in order, as substrings of torch.cuda.get_device_name: more specific names first.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("B200", 2250.0),
    ("H200 NVL", 835.5),
    ("H200", 989.4),  # SXM
    ("H100 NVL", 835.5),
    ("H100 PCIe", 756.0),
    ("H100", 989.4),  # SXM
    ("A100", 312.0),
    ("L40S", 362.1),
    ("L4", 121.0),
    ("RTX 4090", 165.2),
)
# (model, resolution) pairs for the throughput figures (issue 9.6).
THROUGHPUT = (("efficientnet_b0", 224), ("resnet18", 32))
# Packing: (depth, width, resolution multiplier) of the trials, a small grid around the baseline.
PACK_GRID = ((1.0, 1.0, 1.0), (1.2, 1.1, 1.0), (1.0, 1.1, 1.15), (1.1, 1.0, 1.15))
WARMUP_STEPS = 3


def peak_tflops(device_name: str, given: float | None) -> float | None:
    """``given``, else the table's figure for ``device_name``, else None (no MFU printed)."""
    if given is not None:
        return given
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in device_name:
            return tflops
    return None


def train_flops_per_image(model_name: str, resolution: int, num_classes: int) -> float:
    """Forward + backward FLOPs of one training image (2 per multiply-add, backward = 2 x forward)."""
    from effscale.models import measure_cost

    macs = measure_cost(model_name, resolution, num_classes=num_classes).flops  # 1 multiply-add = 1 flop
    return 3.0 * 2.0 * macs


# ---------------------------------------------------------------------------------------------
# (a) throughput


def plain_loop(model: Any, x: Any, y: Any, *, batch: int, steps: int, lr: float, smoothing: float,
               compile_model: bool) -> float:
    """The loop timm's train script runs, minus its data loader (the data is already on the device
    as normalised float images): images/s over ``steps`` steps after `WARMUP_STEPS` untimed ones."""
    import torch
    import torch.nn.functional as F

    device = x.device
    cuda = device.type == "cuda"
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if compile_model else model
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    per_epoch = x.shape[0] // batch
    perm = torch.randperm(x.shape[0], device=device)

    def step(i: int) -> None:
        idx = perm[(i % per_epoch) * batch : (i % per_epoch + 1) * batch]
        xb = x[idx].contiguous(memory_format=torch.channels_last) if cuda else x[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(forward(xb), y[idx], label_smoothing=smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(WARMUP_STEPS):
        step(i)
    _sync(device)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(model_name: str, resolution: int, *, data: Any, args: argparse.Namespace, device: Any,
               peak: float | None) -> dict[str, Any]:
    """One (model, resolution): best-of-rounds images/s of the plain loop and of `train_proxy`."""
    import torch

    from effscale.models import get_baseline
    from effscale.trainer import ProxyRecipe, train_proxy
    from effscale.trainer._augment import normalizer, resize_uint8

    base = get_baseline(model_name)
    batch = min(args.batch_size, data.num_train)
    recipe = ProxyRecipe(steps=args.steps, batch_size=batch, compile=args.compile).for_baseline(base)
    scale, shift = normalizer(data.mean, data.std)
    x = resize_uint8(data.x_train, resolution).float().mul_(scale).add_(shift)
    torch.manual_seed(0)
    initial = base.build(1.0, 1.0, data.num_classes)

    def plain(steps: int) -> float:
        return plain_loop(copy.deepcopy(initial), x, data.y_train, batch=batch, steps=steps, lr=recipe.peak_lr,
                          smoothing=recipe.effective_label_smoothing, compile_model=args.compile)

    def ours(steps: int) -> float:
        result = train_proxy(copy.deepcopy(initial), data, resolution=resolution, recipe=recipe.replace(steps=steps),
                             device=device, min_resolution=base.min_resolution)
        return result.images_per_s

    plain(WARMUP_STEPS)  # untimed: kernel selection, allocator growth (and compilation)
    ours(WARMUP_STEPS)
    rounds = [(plain(args.steps), ours(args.steps)) for _ in range(args.rounds)]
    best_plain, best_ours = max(p for p, _ in rounds), max(o for _, o in rounds)
    flops = train_flops_per_image(model_name, resolution, data.num_classes)
    mfu = (lambda ips: flops * ips / (peak * 1e12)) if peak else (lambda ips: None)
    return {"model": model_name, "resolution": resolution, "batch": batch, "steps": args.steps,
            "rounds": args.rounds, "plain_images_per_s": best_plain, "train_proxy_images_per_s": best_ours,
            "ratio": best_ours / best_plain, "train_flops_per_image": flops,
            "plain_mfu": mfu(best_plain), "train_proxy_mfu": mfu(best_ours)}


def _mfu_text(mfu: float | None) -> str:
    return f"MFU {100 * mfu:.1f}%" if mfu is not None else "MFU n/a"


# ---------------------------------------------------------------------------------------------
# (b) packing


def _pack_trials(args: argparse.Namespace) -> list[tuple[float, float, int]]:
    return [(d, w, round(args.pack_resolution * g)) for d, w, g in PACK_GRID]


def _pack_worker(args: argparse.Namespace, trials: list[tuple[float, float, int]], barrier: Any, out: Any) -> None:
    """One process sharing the GPU: set up, warm up, wait for the others, run its trials in turn."""
    import torch

    from effscale.models import get_baseline
    from effscale.trainer import ProxyRecipe, load_data, train_proxy

    try:
        torch.set_num_threads(1)  # the trials share the host's cores too
        device = torch.device(args.device)
        data = load_data(args.data, seed=0, device=device)
        base = get_baseline(args.pack_model)
        recipe = ProxyRecipe(steps=args.pack_steps, batch_size=args.pack_batch_size).for_baseline(base)

        def trial(depth: float, width: float, resolution: int, steps: int) -> int:
            torch.manual_seed(0)
            model = base.build(depth, width, data.num_classes)
            result = train_proxy(model, data, resolution=resolution, recipe=recipe.replace(steps=steps),
                                 device=device, min_resolution=base.min_resolution)
            return result.steps * result.batch_size

        trial(*trials[0], WARMUP_STEPS)  # untimed: CUDA context, kernels, allocator
        barrier.wait()
        start = time.monotonic()  # CLOCK_MONOTONIC on Linux: one clock for every process
        images = sum(trial(d, w, r, args.pack_steps) for d, w, r in trials)
        out.put({"start": start, "end": time.monotonic(), "images": images, "trials": len(trials)})
    except BaseException as exc:  # noqa: BLE001 - reported by the parent, which then fails the figure
        barrier.abort()
        out.put({"error": f"{type(exc).__name__}: {exc}"})


def _collect(procs: list[Any], out: Any, *, timeout: float) -> list[dict[str, Any]]:
    """One report per process; a process that died without one (killed for memory, a crash in
    CUDA) fails the figure at once instead of after ``timeout``."""
    import queue

    reports: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(reports) < len(procs):
        try:
            reports.append(out.get(timeout=2.0))
            continue
        except queue.Empty:
            pass
        dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if dead or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            why = f"exit code {dead[0]}" if dead else f"no result within {timeout:g} s (--pack-timeout)"
            raise RuntimeError(f"packing k={len(procs)}: a trial process died: {why}")
    return reports


def packed(k: int, args: argparse.Namespace) -> dict[str, Any]:
    """All `PACK_GRID` trials spread round-robin over ``k`` processes sharing the device."""
    trials = _pack_trials(args)
    ctx = mp.get_context("spawn")  # CUDA cannot be used in a forked child
    barrier, out = ctx.Barrier(k, timeout=args.pack_timeout), ctx.Queue()
    procs = [ctx.Process(target=_pack_worker, args=(args, trials[i::k], barrier, out)) for i in range(k)]
    for p in procs:
        p.start()
    try:
        reports = _collect(procs, out, timeout=args.pack_timeout)
    finally:
        for p in procs:
            p.join(timeout=60)
    errors = [r["error"] for r in reports if "error" in r]
    if errors:
        raise RuntimeError(f"packing k={k}: a trial process failed: {errors[0]}")
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    n = sum(r["trials"] for r in reports)
    return {"k": k, "trials": n, "wall_s": wall, "trials_per_s": n / wall,
            "images_per_s": sum(r["images"] for r in reports) / wall}


# ---------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="digits", help="a load_data source (default: digits)")
    ap.add_argument("--batch-size", type=int, default=128, help="throughput figures' batch (default 128)")
    ap.add_argument("--steps", type=int, default=40, help="timed steps per throughput measurement")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="torch.compile both loops")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the GPU's peak dense bf16 TFLOP/s for MFU (default: by device name, see PEAK_BF16_TFLOPS)")
    ap.add_argument("--pack", default="2,4", help="process counts k for packing, comma-separated (default 2,4)")
    ap.add_argument("--pack-model", default="resnet18", help="packing trials' baseline (resnet18 or tiny)")
    ap.add_argument("--pack-resolution", type=int, default=32)
    ap.add_argument("--pack-steps", type=int, default=60, help="training steps per packing trial")
    ap.add_argument("--pack-batch-size", type=int, default=64)
    ap.add_argument("--pack-timeout", type=float, default=600.0, help="seconds before a packing run is given up")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--skip-packing", action="store_true")
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="run every code path on the CPU at toy sizes to check the script (figures meaningless)")
    ap.add_argument("--json", action="store_true", help="also print one JSON document at the end")
    return ap


def _smoke_sizes(args: argparse.Namespace) -> list[tuple[str, int]]:
    """--cpu-smoke: toy sizes, so that the whole script runs in about a minute on two cores."""
    args.device, args.steps, args.rounds, args.batch_size = "cpu", 3, 1, 32
    args.pack_model, args.pack_resolution, args.pack_steps, args.pack_batch_size = "tiny", 16, 4, 32
    return [("tiny", 16), ("resnet18", 32)]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ks = sorted({int(k) for k in args.pack.split(",") if k.strip()})
    except ValueError:
        ks = []
    if not ks or min(ks) < 2 or any(len(PACK_GRID) % k for k in ks):
        print(f"bench_gpu.py: --pack {args.pack!r}: pass process counts >= 2 that divide the "
              f"{len(PACK_GRID)} packing trials, e.g. 2,4", file=sys.stderr)
        return 2
    import torch

    if args.cpu_smoke:
        sizes = _smoke_sizes(args)
    elif not torch.cuda.is_available():
        print(f"bench_gpu.py needs CUDA, and torch {torch.__version__} sees no GPU here; run it on a GPU "
              "machine (or pass --cpu-smoke to check the script on the CPU)", file=sys.stderr)
        return 2
    else:
        args.device, sizes = "cuda", list(THROUGHPUT)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run: figures meaningless)"
    peak = peak_tflops(name, args.peak_tflops) if device.type == "cuda" else None
    print(f"device: {name}; torch {torch.__version__}; peak bf16 "
          f"{f'{peak:g} TFLOP/s' if peak else 'unknown (pass --peak-tflops for MFU)'}", flush=True)
    summary: dict[str, Any] = {"device": name, "torch": torch.__version__, "peak_bf16_tflops": peak}
    if not args.skip_throughput:
        from effscale.trainer import load_data

        data = load_data(args.data, seed=0, device=device)
        summary["throughput"] = []
        for model_name, resolution in sizes:
            t = throughput(model_name, resolution, data=data, args=args, device=device, peak=peak)
            summary["throughput"].append(t)
            print(f"{model_name} at {resolution} px, batch {t['batch']}: plain timm-style loop "
                  f"{t['plain_images_per_s']:.0f} img/s ({_mfu_text(t['plain_mfu'])}), train_proxy "
                  f"{t['train_proxy_images_per_s']:.0f} img/s ({_mfu_text(t['train_proxy_mfu'])}), "
                  f"ratio {t['ratio']:.3f} (best of {args.rounds} rounds of {args.steps} steps)", flush=True)
    if not args.skip_packing:
        trials = _pack_trials(args)
        one = packed(1, args)
        summary["packing"] = [one]
        print(f"packing {args.pack_model}, {len(trials)} trials at {sorted({r for _, _, r in trials})} px, "
              f"{args.pack_steps} steps each: one at a time {one['trials_per_s'] * 3600:.0f} trials/h "
              f"({one['images_per_s']:.0f} img/s), ratio 1.000", flush=True)
        for k in ks:
            p = packed(k, args)
            summary["packing"].append(p)
            print(f"packing k={k} processes on one device: {p['trials_per_s'] * 3600:.0f} trials/h "
                  f"({p['images_per_s']:.0f} img/s), ratio {p['trials_per_s'] / one['trials_per_s']:.3f} "
                  "against one at a time", flush=True)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
