"""The ui package imports in one direction: only the entry point imports the main window, and the
graph of ui modules (imports inside functions and under TYPE_CHECKING included) has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[2] / "ui"
MAIN_WINDOW = "longdesk.ui.main_window"
ENTRY = "longdesk.ui.application"  # creates the window (run_gui)


def module_name(path: Path) -> str:
    rel = path.relative_to(UI).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(["longdesk", "ui", *parts])


def ui_imports(path: Path, known: set[str]) -> set[str]:
    """The ui modules ``path`` imports, wherever in the file the import statement is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from longdesk.ui import menus`` names a module too
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {n for n in names if n in known}
    return found


def ui_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in UI.rglob("*.py")}
    known = set(files)
    return {name: ui_imports(path, known) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as the modules along it (first repeated at the end); [] when none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_only_the_entry_point_imports_the_main_window() -> None:
    graph = ui_graph()
    assert MAIN_WINDOW in graph
    importers = sorted(name for name, deps in graph.items() if MAIN_WINDOW in deps)
    assert importers == [ENTRY]


def test_the_ui_modules_import_each_other_without_a_cycle() -> None:
    assert find_cycle(ui_graph()) == []


@pytest.mark.parametrize(
    ("graph", "cycle"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b", "c"}, "b": set(), "c": {"c2"}, "c2": {"c"}}, ["c", "c2", "c"]),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], cycle: list[str]) -> None:
    assert find_cycle(graph) == cycle


def test_the_scan_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    source = tmp_path / "flow.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from longdesk.ui.main_window import MainWindow\n"
        "def f():\n"
        "    import longdesk.ui.menus\n"
        "    from longdesk.ui import theme\n",
        encoding="utf-8",
    )
    known = {MAIN_WINDOW, "longdesk.ui.menus", "longdesk.ui.theme", "longdesk.ui.sources_glue"}
    assert ui_imports(source, known) == {MAIN_WINDOW, "longdesk.ui.menus", "longdesk.ui.theme"}
