"""The layout keeps its promises: the state types need nothing but the standard library, the exporter
needs nothing from the launcher but them, and the generic supervision knows nothing of vLLM."""

import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_state_types_import_only_the_standard_library():
    modules = imported_modules(REPO / "launcher" / "states.py")
    top_levels = {name.split(".")[0] for name in modules} - {"__future__"}
    assert top_levels <= set(sys.stdlib_module_names), top_levels - set(sys.stdlib_module_names)


def test_the_exporter_imports_only_the_state_types_from_the_launcher():
    for path in (REPO / "observability" / "exporter").glob("*.py"):
        from_launcher = {name for name in imported_modules(path) if name.split(".")[0] == "launcher"}
        assert from_launcher <= {"launcher.states"}, (path.name, from_launcher)


def test_supervision_knows_nothing_of_vllm_or_the_stack():
    for path in (REPO / "launcher" / "supervision").glob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith(("launcher.vllm_server", "launcher.stack", "launcher.commands")), (path, name)
            assert name.split(".")[0] != "vllm", (path, name)


def test_the_orphan_guard_runs_on_the_standard_library_alone():
    modules = imported_modules(REPO / "launcher" / "supervision" / "orphan_guard.py")
    outside = {name for name in modules if name.split(".")[0] not in sys.stdlib_module_names} - {"__future__"}
    assert outside <= {"launcher.supervision"}, outside  # process_groups, itself stdlib-only
    groups = imported_modules(REPO / "launcher" / "supervision" / "process_groups.py")
    assert {name.split(".")[0] for name in groups} - {"__future__"} <= set(sys.stdlib_module_names)
