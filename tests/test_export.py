"""`effscale export`: a family member carried away, and read back by stacks that know nothing of effscale.

The python format is imported and built in an environment that holds torch and what torch needs and
nothing else (no effscale, no site-packages); ONNX exports run in ONNX Runtime and torch.export
files are reloaded, each against `build_member`'s outputs on the same input.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from effscale import Coefficients, build_member, emit_family
from effscale.cli import main
from effscale.export.formats import RTOL, fixed_input, relative_diff

BASELINES = ("efficientnet_b0", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet34", "resnet50", "resnet20_cifar",
             "tiny")
MEMBERS = ("B0", "B3", "phi-1")
# B3 of the two large ResNets is 30-45M parameters: writing, reloading and checking them costs the
# suite half a minute and tests no block kind that ResNet-18 (basic) and their own B0 (bottleneck)
# do not already cover.
SKIP_B3 = ("resnet34", "resnet50")


def _top_level(dist: importlib.metadata.Distribution) -> set[str]:
    names = set()
    for f in dist.files or ():
        first = f.parts[0]
        if first.endswith((".dist-info", ".data")) or first == "__pycache__" or first.startswith(".."):
            continue
        names.add(first)
    return names


@pytest.fixture(scope="module")
def only_torch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding torch and the distributions it requires (transitively), and nothing else."""
    root = tmp_path_factory.mktemp("only-torch")
    seen: set[str] = set()
    todo = ["torch"]
    while todo:
        name = re.split(r"[ ;<>=!~\[]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional requirement this platform does not install
        todo += [r for r in dist.requires or () if "extra ==" not in r]
        for top in _top_level(dist):
            source = Path(dist.locate_file(top))
            if source.exists() and not (root / top).exists():
                (root / top).symlink_to(source)
    assert (root / "torch").exists() and not (root / "effscale").exists()
    return root


def _family(tmp_path: Path, name: str) -> Path:
    # A small input keeps every forward cheap; the members are the family's as any user gets them.
    base = 40 if name != "resnet20_cifar" else 32  # phi -1 still above the total stride: 35 px
    phis = [-1, 0] if name in SKIP_B3 else [-1, 0, 3]
    family = emit_family(name, Coefficients(1.2, 1.1, 1.15), phis=phis, base_resolution=base, num_classes=10)
    return family.save(tmp_path / f"{name}.json")


@pytest.mark.parametrize("name", BASELINES)
def test_python_export_builds_in_an_environment_with_only_torch(name: str, tmp_path: Path, only_torch: Path) -> None:
    from effscale.search.family.members import Family

    path = _family(tmp_path, name)
    family = Family.load(path)
    out = tmp_path / "export"
    expected = {}
    members = [m for m in MEMBERS if not (m == "B3" and name in SKIP_B3)]
    for member in members:
        assert main(["export", str(path), "--member", member, "--format", "python", "--out", str(out)]) == 0
        record = json.loads((out / f"{name}-{member}.python.json").read_text())
        assert record["params"] == family.member(member).params and record["check"].startswith("the exported module")
        torch.manual_seed(0)  # the export's default seed: the same initial weights
        model = build_member(family, member).eval()
        x = fixed_input(family.member(member).resolution)
        torch.save(x, out / f"{member}-input.pt")
        with torch.no_grad():
            expected[member] = model(x)
    code = (
        "import sys, importlib.util, json, torch\n"
        "out = sys.argv[1]; results = {}\n"
        f"for member in {members!r}:\n"
        f"    spec = importlib.util.spec_from_file_location(member, f'{{out}}/{name}-{{member}}.py')\n"
        "    module = importlib.util.module_from_spec(spec); sys.modules[member] = module; spec.loader.exec_module(module)\n"
        "    model = module.build().eval()\n"
        f"    model.load_state_dict(torch.load(f'{{out}}/{name}-{{member}}.pt', weights_only=True))\n"
        "    with torch.no_grad(): y = model(torch.load(f'{out}/{member}-input.pt'))\n"
        "    torch.save(y, f'{out}/{member}-output.pt')\n"
        "    results[member] = sum(p.numel() for p in model.parameters())\n"
        "print(json.dumps({'effscale': importlib.util.find_spec('effscale') is not None, 'params': results}))\n"
    )
    # -S: no site-packages at all; only the directory holding torch and what torch needs.
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(only_torch)}
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(out)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["effscale"] is False
    for member in members:
        assert result["params"][member] == family.member(member).params
        assert torch.equal(torch.load(out / f"{member}-output.pt"), expected[member])


@pytest.mark.parametrize(("name", "member"), [("resnet20_cifar", "B3"), ("resnet20_cifar", "phi-1"),
                                              ("efficientnet_b0", "B0")])
def test_onnx_and_pt2_exports_load_and_match(name: str, member: str, tmp_path: Path) -> None:
    import onnxruntime

    from effscale.search.family.members import Family

    path = _family(tmp_path, name)
    family = Family.load(path)
    out = tmp_path / "export"
    for fmt in ("onnx", "pt2"):
        assert main(["export", str(path), "--member", member, "--format", fmt, "--out", str(out), "--json"]) == 0
    torch.manual_seed(0)
    model = build_member(family, member).eval()
    x = fixed_input(family.member(member).resolution)
    with torch.no_grad():
        expected = model(x)
    session = onnxruntime.InferenceSession(str(out / f"{name}-{member}.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"image": x.numpy()})
    assert relative_diff(torch.from_numpy(onnx_out), expected)[1] <= RTOL
    reloaded = torch.export.load(str(out / f"{name}-{member}.pt2")).module()
    with torch.no_grad():
        assert relative_diff(reloaded(x), expected)[1] <= RTOL
    # exactly the files named, nothing left under a temporary name (an ONNX data file, say)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}-{member}.{ext}" for ext in
                                                           ("onnx", "onnx.json", "pt2", "pt2.json"))
    record = json.loads((out / f"{name}-{member}.onnx.json").read_text())
    assert record["onnx_opset"] == 18 and record["phi"] == family.member(member).phi and record["effscale"]
    assert {"baseline", "stem", "coefficients", "resolution", "params", "flops"} <= record.keys()


def test_without_the_extra_onnx_says_which_to_install(tmp_path: Path) -> None:
    # onnx made unimportable for this one process, as on a machine without the extra.
    blocked = tmp_path / "blocked" / "onnx"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('onnx is not installed here')\n")
    path = _family(tmp_path, "tiny")
    env = {**os.environ, "PYTHONPATH": str(blocked.parent)}
    proc = subprocess.run([sys.executable, "-m", "effscale.cli", "export", str(path), "--member", "B0", "--format",
                           "onnx", "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "effscale export: error: --format onnx needs onnx, which is not installed; pip install 'effscale[export]'"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # nothing half-written
