"""The house rules of docs/ARCHITECTURE.md, checked on the source: dependencies run one way, no
import cycles between modules, and the gym's lower layers never import torch.

The walk reads every ``import`` statement (also those inside functions: a lazy import is still a
dependency) with :mod:`ast`, so it needs no optional package installed.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sdar_gym", "skills", "learners", "env_servers")

GYM_LAYERS = [
    ("sdar_gym.core", "sdar_gym.io", "sdar_gym.processes", "sdar_gym.progress", "sdar_gym.presets"),
    ("sdar_gym.envs",),
    ("sdar_gym.agent", "sdar_gym.specs", "sdar_gym.registration"),
    ("sdar_gym.rollout",),
    ("sdar_gym.play", "sdar_gym.cli", "sdar_gym"),
]
"""Inside the gym, bottom to top (rollout -> agent -> envs -> core); a module may import only from
its own layer or the layers below. The env specs sit with the agent layer, whose templates and
action formats they name, and gymnasium registration reads them."""

PACKAGE_MAY_IMPORT = {
    "sdar_gym": {"sdar_gym"},
    "skills": {"skills", "sdar_gym"},
    "env_servers": {"env_servers", "sdar_gym"},
    "learners": {"learners", "skills", "sdar_gym"},
}
"""Upper packages plug in from above; the gym never imports them."""

TORCH_FREE = ("sdar_gym.envs", "sdar_gym.agent")
HEAVY = {"torch", "transformers"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, modules: set[str]) -> set[str]:
    """Every module ``name`` imports (project modules by full name, others by top-level name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in modules else base)
    resolved = set()
    for target in out:
        if target.split(".")[0] in PACKAGES:
            while target not in modules and "." in target:  # `import a.b.c` of a package: its deepest module
                target = target.rpartition(".")[0]
            resolved.add(target)
        else:
            resolved.add(target.split(".")[0])
    resolved.discard(name)
    return resolved


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    sources = _sources()
    return {name: _imports(name, path, set(sources)) for name, path in sources.items()}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _gym_layer(name: str) -> int:
    # the most specific prefix wins (``sdar_gym`` alone is the package's __init__)
    best = max(((len(p), i) for i, layer in enumerate(GYM_LAYERS) for p in layer if name == p or (p != "sdar_gym" and name.startswith(p + "."))), default=None)
    assert best is not None, f"{name} is in no layer of GYM_LAYERS: place it there"
    return best[1]


def test_packages_import_only_downward(graph):
    bad = [
        f"{src} -> {dst}"
        for src, dsts in graph.items()
        for dst in dsts
        if dst.split(".")[0] in PACKAGES and dst.split(".")[0] not in PACKAGE_MAY_IMPORT[src.split(".")[0]]
    ]
    assert not bad, "imports running up a layer:\n" + "\n".join(sorted(bad))


def test_gym_layers_import_only_downward(graph):
    bad = [
        f"{src} (layer {_gym_layer(src)}) -> {dst} (layer {_gym_layer(dst)})"
        for src, dsts in graph.items()
        if src.split(".")[0] == "sdar_gym"
        for dst in dsts
        if dst.split(".")[0] == "sdar_gym" and _gym_layer(dst) > _gym_layer(src)
    ]
    assert not bad, "imports running up a layer inside sdar_gym:\n" + "\n".join(sorted(bad))


def test_envs_and_agent_never_import_torch(graph):
    bad = [f"{src} -> {dst}" for src, dsts in graph.items() if _within(src, TORCH_FREE) for dst in dsts if dst in HEAVY]
    assert not bad, "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_between_modules(graph):
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_walk_sees_what_it_checks():
    """The checks above would pass on an empty graph: make sure they can fail."""
    sources = _sources()
    g = {name: _imports(name, path, set(sources)) for name, path in sources.items()}
    assert "learners.base" in g["learners.algorithms"] and "torch" in g["learners.base"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _gym_layer("sdar_gym.rollout.pools.http") > _gym_layer("sdar_gym.agent.agent") > _gym_layer("sdar_gym.envs.alfworld.env")
