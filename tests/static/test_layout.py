"""The house is one-way: which part may import which is a short list of rules, held against every import in
launcher/ and observability/ (lazy ones inside functions included). No two parts import each other, no two
files either, and each failure names the file, the line and the import that broke the rule."""

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("launcher", "observability")

# The ground floor: small modules that import nothing of the project but what this list allows them.
GROUND = (
    "launcher",  # launcher/__init__.py: the version
    "launcher.states",
    "launcher.errors",
    "launcher.file_writes",
    "launcher.http_probe",
    "launcher.state_layout",
    "launcher.defaults",
    "launcher.addresses",
    "launcher.preflight",
    "launcher.installed_tools",
    "launcher.launcher_credentials",
    "launcher.helper_environment",
)
# What observability/ holds as plain data and generators: the SLOs, where files are, runbooks.
OBSERVABILITY_DATA = (
    "observability.files",
    "observability.generated_files",
    "observability.runbooks",
    "observability.slo_objectives",
)

# part -> the parts it may import (besides itself, the standard library and third-party packages). A part
# is a package, or a module that sits directly in launcher/ or observability/.
RULES: dict[str, tuple[str, ...]] = {
    "launcher.states": (),  # standard library only: the exporter and any script read it
    "launcher.errors": (),
    "launcher.file_writes": (),
    "launcher.http_probe": (),
    "launcher.state_layout": ("launcher.file_writes",),  # its directories are made without following links
    "launcher.defaults": ("observability.slo_objectives", "observability.runbooks"),
    "launcher.addresses": ("launcher.defaults",),
    "launcher.preflight": ("launcher.errors",),
    "launcher.installed_tools": (),
    "launcher.launcher_credentials": ("launcher.state_layout",),
    "launcher.helper_environment": (),  # standard library only: the orphan guard imports it
    "launcher.settings": (*GROUND, "observability.slo_objectives", "observability.exporter.collector_catalog"),
    "launcher.supervision": GROUND,  # generic: it knows nothing of vLLM or the stack
    "launcher.incidents": (*GROUND, "launcher.supervision"),  # evidence of a process tree, from outside it
    "launcher.vllm_server": (
        *GROUND,
        "launcher.settings",
        "launcher.supervision",
        "launcher.incidents",
        *OBSERVABILITY_DATA,
        "observability.dashboards",
    ),
    "launcher.stack": (
        *GROUND,
        "launcher.settings",
        "launcher.supervision",
        *OBSERVABILITY_DATA,
        "observability.slo_rules",
        "observability.efficiency_rules",
        "observability.dashboards",
        "observability.exporter",
    ),
    "launcher.top": (*GROUND, "launcher.settings", "observability.slo_objectives"),
    "launcher.commands": (  # the top floor: it wires everything together
        *GROUND,
        "launcher.settings",
        "launcher.supervision",
        "launcher.incidents",
        "launcher.vllm_server",
        "launcher.stack",
        "launcher.top",
        *OBSERVABILITY_DATA,
        "observability.exporter",
    ),
    "launcher.__main__": ("launcher.commands",),
    "launcher": (),
    # observability/ takes nothing from launcher/ but the state types.
    "observability.files": (),
    "observability.generated_files": (),
    "observability.runbooks": (),
    "observability.slo_objectives": (),
    "observability.slo_rules": OBSERVABILITY_DATA,
    # The GPU label names come from the exporter, so the rules join on exactly what it exports.
    "observability.efficiency_rules": (*OBSERVABILITY_DATA, "observability.slo_rules", "observability.exporter"),
    "observability.dashboards": (*OBSERVABILITY_DATA, "observability.slo_rules", "observability.efficiency_rules"),
    "observability.exporter": ("launcher.states",),
    "observability.kubernetes_manifests": (*OBSERVABILITY_DATA, "observability.dashboards"),
    "observability": (),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for root in ROOTS
    for path in sorted((REPO / root).rglob("*.py"))
    if "__pycache__" not in path.parts
}


def part_of(module: str) -> str:
    """The package it belongs to below launcher/ or observability/, or the module itself if it sits there."""
    parts = module.split(".")
    if len(parts) >= 2 and (REPO.joinpath(*parts[:2]).is_dir() or len(parts) == 2):
        return ".".join(parts[:2])
    return parts[0]


def imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, the import as written, the project module it reaches) for every import of the project."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [(alias.name, f"import {alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = ", ".join(alias.name for alias in node.names)
            written = f"from {node.module} import {names}"
            # `from launcher import defaults` reaches launcher.defaults, a module of its own.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [(name, written) for name in submodules if name in MODULES] or [(node.module, written)]
        else:
            continue
        for target, written in targets:
            if target.split(".")[0] in ROOTS:
                found.append((node.lineno, written, target))
    return found


def test_every_part_has_a_rule():
    assert {part_of(module) for module in MODULES} <= set(RULES), "add the new part to RULES"


def test_every_import_follows_the_rules():
    broken = []
    for module, path in MODULES.items():
        mine = part_of(module)
        for line, written, target in imports(path):
            theirs = part_of(target)
            if theirs != mine and theirs not in RULES[mine] and target not in RULES[mine]:  # a part, or one module
                broken.append(f"{path.relative_to(REPO)}:{line}: {written} ({mine} may not import {theirs})")
    assert not broken, "imports against the layering rules:\n" + "\n".join(broken)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each a set of nodes in a loop."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_two_files_import_each_other_even_through_others():
    graph = {
        module: {target for _, _, target in imports(path) if target in MODULES} for module, path in MODULES.items()
    }
    assert _cycles(graph) == []


def test_no_two_parts_import_each_other():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        graph[part_of(module)] |= {part_of(target) for _, _, target in imports(path)} - {part_of(module)}
    assert _cycles(graph) == []


def test_the_rules_themselves_run_one_way():
    assert _cycles({part: set(allowed) for part, allowed in RULES.items()}) == []


def test_the_state_types_import_only_the_standard_library():
    tree = ast.parse(MODULES["launcher.states"].read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.split(".")[0] for name in modules} - {"__future__"} <= set(sys.stdlib_module_names)


def test_supervision_knows_nothing_of_vllm():
    for module, path in MODULES.items():
        if part_of(module) == "launcher.supervision":
            tree = ast.parse(path.read_text())
            names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
            assert "vllm" not in {name.split(".")[0] for name in names}, module


def test_the_orphan_guard_runs_on_the_standard_library_alone():
    modules = (
        "launcher.supervision.orphan_guard",
        "launcher.supervision.process_groups",
        "launcher.supervision.shared_memory_files",
        "launcher.helper_environment",
    )
    for module in modules:
        tree = ast.parse(MODULES[module].read_text())
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        outside = {name for name in names if name.split(".")[0] not in sys.stdlib_module_names} - {"__future__"}
        allowed = {
            "launcher.supervision",
            "launcher.supervision.process_groups",
            "launcher.supervision.shared_memory_files",
            "launcher.helper_environment",
        }
        assert outside <= allowed, (module, outside)


def test_a_broken_rule_is_named_with_its_file_and_line(tmp_path, monkeypatch):
    """The check itself: a planted import from the top floor into supervision is caught and named."""
    planted = REPO / "launcher" / "supervision" / "planted_for_the_layout_test.py"
    monkeypatch.setitem(MODULES, "launcher.supervision.planted_for_the_layout_test", planted)
    monkeypatch.setattr(Path, "read_text", _planted_text(planted, Path.read_text))
    try:
        test_every_import_follows_the_rules()
    except AssertionError as error:
        assert (
            "launcher/supervision/planted_for_the_layout_test.py:2: from launcher.commands.serve import serve "
            "(launcher.supervision may not import launcher.commands)"
        ) in str(error)
    else:
        raise AssertionError("the planted import was not caught")


def _planted_text(planted: Path, original):
    def read_text(self, *args, **kwargs):
        if self == planted:
            return '"""planted"""\nfrom launcher.commands.serve import serve\n'
        return original(self, *args, **kwargs)

    return read_text
