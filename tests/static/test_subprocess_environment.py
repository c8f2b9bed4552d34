"""Every process the launcher and the exporter start is given its environment on purpose: each call that starts
one, anywhere in launcher/ and observability/, passes env=, and none hands on the launcher's whole environment
but the few listed here with their reason. (The helper environment's contents are tests/unit's to check.)"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("launcher", "observability")

STARTS_A_PROCESS = {
    "subprocess": {"run", "Popen", "call", "check_call", "check_output", "getoutput", "getstatusoutput"},
    "asyncio": {"create_subprocess_exec", "create_subprocess_shell"},
    "os": {"system", "popen", "execv", "execve", "execl", "execle", "execlp", "execlpe", "execvp", "execvpe"}
    | {"spawnl", "spawnle", "spawnlp", "spawnlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn"}
    | {"posix_spawnp", "fork", "forkpty"},
    "pty": {"spawn", "fork"},
    "multiprocessing": {"Process"},
}
# The environment is their positional argument.
ENVIRONMENT_POSITION = {"execve": 2, "execvpe": 2, "spawnve": 3, "spawnvpe": 3, "posix_spawn": 2, "posix_spawnp": 2}

# (file, function) -> why it hands on the launcher's whole environment.
WHOLE_ENVIRONMENT = {
    ("launcher/commands/main.py", "hide_secrets"): "the launcher itself, run again without secrets in its argv",
    ("launcher/commands/bench.py", "run_bench"): "the user's own client in the foreground: it needs their API key",
}


def calls() -> list[tuple[str, ast.AST, ast.Call, str]]:
    """(file, innermost enclosing function or module, call, module.function) for every call that starts a process."""
    found: dict[int, tuple[str, ast.AST, ast.Call, str]] = {}
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            tree = ast.parse(path.read_text())
            relative = str(path.relative_to(REPO))
            functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
            for scope in [tree, *functions]:  # ast.walk goes outside in: an inner function's claim comes last
                for node in ast.walk(scope):
                    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                        continue
                    owner = node.func.value
                    if isinstance(owner, ast.Name) and node.func.attr in STARTS_A_PROCESS.get(owner.id, ()):
                        found[id(node)] = (relative, scope, node, f"{owner.id}.{node.func.attr}")
    return list(found.values())


def name_of(scope: ast.AST) -> str:
    return getattr(scope, "name", "<module>")


def environment_of(call: ast.Call, what: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "env":
            return keyword.value
    position = ENVIRONMENT_POSITION.get(what.split(".")[1])
    return call.args[position] if position is not None and len(call.args) > position else None


def hands_on_everything(expression: ast.expr, scope: ast.AST) -> bool:
    """env=os.environ, env=None, {**os.environ, ...}, dict(os.environ), or a name assigned one of those."""
    if isinstance(expression, ast.Constant) and expression.value is None:
        return True
    if isinstance(expression, ast.Name):
        assigned = [
            node.value
            for node in ast.walk(scope)
            if isinstance(node, ast.Assign)
            and any(isinstance(target, ast.Name) and target.id == expression.id for target in node.targets)
        ]
        return any(hands_on_everything(value, scope) for value in assigned)
    return any(
        isinstance(node, ast.Attribute) and node.attr == "environ" and getattr(node.value, "id", None) == "os"
        for node in ast.walk(expression)
    )


def test_the_scan_finds_the_calls_it_is_meant_to():
    found = {(file, what) for file, _, _, what in calls()}
    assert ("launcher/supervision/orphan_guard.py", "subprocess.Popen") in found
    assert ("launcher/stack/prometheus_rules.py", "subprocess.run") in found
    assert ("launcher/commands/main.py", "os.execve") in found


def test_no_module_imports_a_process_starter_by_its_bare_name():
    """`from subprocess import run` would hide a call from the scan above."""
    bare = []
    for root in ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module in STARTS_A_PROCESS:
                    names = {alias.name for alias in node.names} & STARTS_A_PROCESS[node.module]
                    if names:
                        bare.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import {names}")
    assert not bare, "\n".join(bare)


def test_every_process_is_started_with_an_environment_chosen_for_it():
    problems = []
    for file, scope, call, what in calls():
        where = f"{file}:{call.lineno} {what} in {name_of(scope)}()"
        environment = environment_of(call, what)
        if environment is None:
            problems.append(f"{where}: no env= (it would inherit HF_TOKEN, VLLM_API_KEY ...)")
        elif hands_on_everything(environment, scope) and (file, name_of(scope)) not in WHOLE_ENVIRONMENT:
            problems.append(f"{where}: hands on the launcher's whole environment; use helper_environment()")
    assert not problems, "\n".join(problems)


def test_each_exception_is_still_there():
    """A listed exception that no longer exists is dropped from the list, so the list stays the truth."""
    found = {
        (file, name_of(scope))
        for file, scope, call, what in calls()
        if hands_on_everything(environment_of(call, what) or ast.Constant(None), scope)
    }
    assert set(WHOLE_ENVIRONMENT) <= found
