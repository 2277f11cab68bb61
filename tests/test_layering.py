"""The package's import layering (DESIGN.md: data flows one way, nothing low imports high)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import handface

PACKAGE = Path(handface.__file__).parent


SHORTCUTS = {("capture", "export", "export"), ("capture", "show", "view")}
"""(module, method, sub-package): the result type's shortcut methods (``Capture.export()``,
``Capture.show()``) import the layer above when called. These imports alone are left out of
the graph; ``import handface.capture`` must still load neither (tested below)."""


def _shortcut_imports(tree: ast.Module, source: str) -> set[int]:
    """ids of the import nodes inside the allowed shortcut methods of module ``source``."""
    allowed = {(method, target) for module, method, target in SHORTCUTS if module == source}
    skipped = set()
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module:
                    parts = node.module.split(".")
                    if len(parts) > 1 and (function.name, parts[1]) in allowed:
                        skipped.add(id(node))
    return skipped


def _package_graph() -> dict[str, set[str]]:
    """Sub-package -> sub-packages it imports (module level or inside functions), but for
    the :data:`SHORTCUTS`."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _shortcut_imports(tree, source)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "handface" and len(parts) > 1 and parts[1] != source:
                    edges[source].add(parts[1])
    return edges


def _reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles_between_subpackages():
    edges = _package_graph()
    cycles = sorted(name for name in edges if name in _reachable(edges, name))
    assert cycles == [], f"sub-packages on an import cycle: {cycles}"


def test_the_graph_helper_sees_a_cycle():
    assert _reachable({"a": {"b"}, "b": {"a"}}, "a") == {"a", "b"}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("handface.models", ("handface.capture", "handface.io", "handface.render")),
        ("handface.data", ("handface.synth", "handface.render", "handface.capture")),
        ("handface.geometry", ("handface.models", "handface.render", "handface.io")),
        ("handface.losses", ("handface.models", "handface.render", "handface.fit")),
        (
            "handface.capture",
            ("handface.export", "handface.view", "handface.io", "handface.viz", "handface.fit"),
        ),
    ],
)
def test_low_modules_do_not_load_high_ones(module, forbidden):
    code = (
        f"import sys, {module}\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('handface.'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [m for m in loaded if m.startswith(forbidden)]
    assert bad == [], f"import {module} loads {bad}"


def test_only_the_capture_shortcuts_are_left_out_of_the_graph():
    tree = ast.parse((PACKAGE / "capture.py").read_text(encoding="utf-8"))
    assert len(_shortcut_imports(tree, "capture")) == 3  # export_capture, capture_scene, serve
    # the same imports elsewhere would count
    assert _shortcut_imports(tree, "models") == set()
    # and without the exception, capture <-> export would be a cycle
    assert "capture" in _package_graph()["export"]
