"""No import cycles between dsrflow's own modules (issue 14: retention reaching into connector
privates had hidden three cycles behind function-level imports). The graph is read from the
sources: every import at module level, and every import inside a function that names a module
of the same package (the kind of import that hides a cycle). A lazy import of another package
(the SDK only when a connector opens, a kind found by name) is not an edge."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connectors", "dsrflow", "flows")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def package_of(name: str, known: dict[str, Path]) -> str:
    return name if known[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def edges(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The own modules ``name`` imports at load time, or lazily from its own package."""
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_checking = [
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    ]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import sub`` depends on the submodule; ``from mod import name`` on mod.
            targets = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                for a in node.names
            ]
        else:
            continue
        targets = [t for t in targets if t in known]
        if not targets:
            continue
        if any(node in ast.walk(n) for n in type_checking):
            continue  # for the type checker only
        top_level = node in tree.body or any(
            node in ast.walk(n) for n in tree.body if isinstance(n, ast.If | ast.Try)
        )
        own = package_of(name, known)
        for target in targets:
            if top_level or package_of(target, known) == own:
                found.add(target)
    found.discard(name)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    known = modules()
    graph = {name: edges(name, path, known) for name, path in known.items()}
    assert cycles(graph) == []
