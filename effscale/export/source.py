"""A family member as one standalone Python file: plain PyTorch, no effscale import.

The file holds, top to bottom: a header naming its source (baseline, stem, coefficients, φ, input
size, measured params and FLOPs, effscale's version); the network's layout as data (the stage
table with every rounding already applied: repeats, widths, strides, kernels); then the code that
builds it. That code is not a copy: it is effscale's own block library and `ScalableNet`, written
out from their source with only the definitions this network uses, so an exported member is built
by exactly the code that builds it in effscale. Loading effscale's initial weights into it gives the
same parameter names, shapes and outputs as `effscale.build_member` (tests/test_export.py).
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from typing import Any

from effscale.models import blocks, network, scaling
from effscale.models.specs import ScaledSpec, ScaledStage

# Where the definitions an exported file may need live, in the order they are written out.
_SOURCES = (scaling, blocks, network)
_ROOTS = ("ScalableNet",)
_WRITTEN_BY_EXPORT = {"BLOCKS", "LAYOUT_FIELDS"}


def member_source(layout: ScaledSpec, *, num_classes: int, resolution: int, provenance: dict[str, Any],
                  weights: str = "MEMBER.pt") -> str:
    """The standalone module for the network ``layout`` with a ``num_classes`` head."""
    used = {stage.block for stage in layout.stages}
    definitions = _definitions()
    wanted = _closure({*_ROOTS, *(blocks.BLOCKS[b].__name__ for b in used)}, definitions)
    code = "\n\n\n".join(text for name, text in definitions.items() if name in wanted and text)
    return "\n".join([
        _header(provenance, weights),
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
        "import torch",
        "from torch import Tensor, nn",
        "from torch.nn import functional as F",
        "",
        "",
        _layout_code(layout, num_classes=num_classes, resolution=resolution),
        "",
        "# " + "-" * 98,
        "# The code that builds it: effscale's block library and network, as effscale runs them.",
        "",
        code,
        "",
        "",
        f"BLOCKS: dict[str, type[nn.Module]] = {{{', '.join(f'{b!r}: {blocks.BLOCKS[b].__name__}' for b in sorted(used))}}}",
        "",
        "",
        "def build(num_classes: int = NUM_CLASSES) -> ScalableNet:",
        '    """The network, freshly initialised; load the exported state_dict into it for effscale\'s weights."""',
        "    return ScalableNet(LAYOUT, num_classes)",
        "",
    ])


def _header(provenance: dict[str, Any], weights: str) -> str:
    lines = [f"{key}: {value}" for key, value in provenance.items()]
    return '"""' + "\n".join([
        f"{provenance.get('member', 'member')} of an effscale family, as plain PyTorch (no effscale needed).",
        "",
        *lines,
        "",
        "    model = build()  # freshly initialised; effscale's initial weights are in " + weights + ":",
        f"    model.load_state_dict(torch.load({weights!r}, weights_only=True))",
        "    model(torch.zeros(1, 3, RESOLUTION, RESOLUTION))",
    ]) + '\n"""\n'


def _layout_code(layout: ScaledSpec, *, num_classes: int, resolution: int) -> str:
    """The layout as plain data: `ScaledStage` and `ScaledSpec` as small dataclasses with exactly the
    fields `ScalableNet` reads (their names and types taken from effscale's own declarations), then
    this network's values."""
    stage_fields = [(f.name, f.type) for f in dataclasses.fields(ScaledStage)]
    spec_types = {f.name: f.type for f in dataclasses.fields(ScaledSpec)}
    spec_fields = [(n, spec_types.get(n) or type(getattr(layout, n)).__name__) for n in network.LAYOUT_FIELDS]
    rows = "\n".join(f"        ScaledStage({', '.join(repr(getattr(s, n)) for n, _ in stage_fields)})," for s in layout.stages)
    values = ", ".join(f"{n}={getattr(layout, n)!r}" for n, _ in spec_fields if n != "stages")
    return "\n".join([
        "@dataclass(frozen=True)", "class ScaledStage:", *(f"    {n}: {t}" for n, t in stage_fields), "", "",
        "@dataclass(frozen=True)", "class ScaledSpec:", *(f"    {n}: {t}" for n, t in spec_fields), "",
        "    @property", "    def num_blocks(self) -> int:", "        return sum(s.repeats for s in self.stages)", "", "",
        f"# The stage table, every rounding applied: ScaledStage({', '.join(n for n, _ in stage_fields)})",
        "LAYOUT = ScaledSpec(", *textwrap.wrap(values + ",", 110, initial_indent="    ", subsequent_indent="    "),
        "    stages=(", rows, "    ),", ")",
        f"NUM_CLASSES = {num_classes}",
        f"RESOLUTION = {resolution}  # the input side this member was measured and trained at",
    ])


def _definitions() -> dict[str, str]:
    """Every top-level function, class and constant of the source modules, by name, in order."""
    found: dict[str, str] = {}
    for module in _SOURCES:
        source = inspect.getsource(module)
        for node in ast.parse(source).body:
            names = _defined(node)
            if names:
                text = ast.get_source_segment(source, node, padded=False)
                found[names[0]] = text
                for alias in names[1:]:
                    found[alias] = ""
    return found


def _defined(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _closure(roots: set[str], definitions: dict[str, str]) -> set[str]:
    """``roots`` and every definition they refer to, transitively. Left out: the block registry
    (``BLOCKS``: the file writes its own, with the blocks this network uses) and `LAYOUT_FIELDS`
    (the file's `ScaledSpec` has exactly those fields)."""
    wanted, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name not in definitions or name in _WRITTEN_BY_EXPORT:
            continue
        wanted.add(name)
        tree = ast.parse(definitions[name]) if definitions[name] else None
        if tree is not None:
            todo.extend(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
            todo.extend(base.id for n in ast.walk(tree) if isinstance(n, ast.ClassDef)
                        for base in n.bases if isinstance(base, ast.Name))
    return wanted
