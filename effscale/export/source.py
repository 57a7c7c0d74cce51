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
import inspect
import textwrap
from typing import Any

from effscale.models import blocks, network, scaling
from effscale.models.specs import ScaledSpec

# Where the definitions an exported file may need live, in the order they are written out.
_SOURCES = (scaling, blocks, network)
_ROOTS = ("ScalableNet",)
_WRITTEN_BY_EXPORT = {"BLOCKS", "NetworkLayout", "StageLayout"}


def member_source(layout: ScaledSpec, *, num_classes: int, resolution: int, provenance: dict[str, Any]) -> str:
    """The standalone module for the network ``layout`` with a ``num_classes`` head."""
    used = {stage.block for stage in layout.stages}
    definitions = _definitions()
    wanted = _closure({*_ROOTS, *(blocks.BLOCKS[b].__name__ for b in used)}, definitions)
    code = "\n\n\n".join(text for name, text in definitions.items() if name in wanted and text)
    return "\n".join([
        _header(provenance),
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass",
        "",
        "import torch",
        "from torch import Tensor, nn",
        "from torch.nn import functional as F",
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


def _header(provenance: dict[str, Any]) -> str:
    lines = [f"{key}: {value}" for key, value in provenance.items()]
    return '"""' + "\n".join([
        f"{provenance.get('member', 'member')} of an effscale family, as plain PyTorch (no effscale needed).",
        "",
        *lines,
        "",
        "    model = build()                                    # then, for effscale's weights:",
        "    model.load_state_dict(torch.load(WEIGHTS_FILE, weights_only=True))",
        "    model(torch.zeros(1, 3, RESOLUTION, RESOLUTION))",
    ]) + '\n"""\n'


def _layout_code(layout: ScaledSpec, *, num_classes: int, resolution: int) -> str:
    rows = "\n".join(
        f"        StageLayout({s.block!r}, {s.repeats}, {s.in_channels}, {s.out_channels}, {s.stride}, {s.kernel}, "
        f"{float(s.expansion)!r}, {float(s.se_ratio)!r}),"
        for s in layout.stages
    )
    return textwrap.dedent('''
        @dataclass(frozen=True)
        class StageLayout:
            block: str
            repeats: int
            in_channels: int
            out_channels: int
            stride: int
            kernel: int
            expansion: float
            se_ratio: float


        @dataclass(frozen=True)
        class NetworkLayout:
            stem_channels: int
            stem_kernel: int
            stem_stride: int
            stem_pool: bool
            stages: tuple[StageLayout, ...]
            head_channels: int | None
            act: str
            dropout: float
            drop_path: float

            @property
            def num_blocks(self) -> int:
                return sum(s.repeats for s in self.stages)


        # The stage table, every rounding applied:
        #   StageLayout(block, repeats, in channels, out channels, stride of its first block, kernel, expansion, SE ratio)
    ''').strip() + "\n" + textwrap.dedent(f'''
        LAYOUT = NetworkLayout(
            stem_channels={layout.stem_channels}, stem_kernel={layout.stem_kernel}, stem_stride={layout.stem_stride},
            stem_pool={layout.stem_pool}, head_channels={layout.head_channels}, act={layout.act!r},
            dropout={float(layout.dropout)!r}, drop_path={float(layout.drop_path)!r},
            stages=(
        ''').rstrip("\n") + "\n" + rows + textwrap.dedent(f'''
            ),
        )
        NUM_CLASSES = {num_classes}
        RESOLUTION = {resolution}  # the input side this member was measured and trained at
    ''').rstrip("\n")


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
    (``BLOCKS``: the file writes its own, with the blocks this network uses) and the layout's
    protocols (the file defines the layout as dataclasses of the same names)."""
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
