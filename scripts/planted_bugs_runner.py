"""scripts/check-planted-bugs: each planted bug, in a copy of the checkout, against the fast tests.

The copy is made once; each bug is written into it, the tests run there (their working directory and
PYTHONPATH are the copy, so they import its code and not the checkout's), and the file is put back.
Before the bugs, the copy's tests run once as they are: a suite that already fails judges nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FAST_TESTS = ("tests/unit", "tests/static")
LIMIT_S = 180.0
MOST_SET_ASIDE = 2
# Not copied: the environment, git's store, caches (a cached .pyc must not outlive the source it came from) and
# build leftovers (an egg-info on PYTHONPATH tells pip the project is installed already: test_wheel.py).
SKIPPED = (
    ".venv",
    ".git",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".tools",
    "state",
    "build",
    "dist",
    "*.egg-info",
)


def load_bugs(root: Path) -> tuple:
    spec = importlib.util.spec_from_file_location("planted_bugs", root / "tests" / "support" / "planted_bugs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PLANTED_BUGS


def copy_checkout(target: Path) -> None:
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(*SKIPPED), symlinks=True)


def environment(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)  # before the checkout's editable install, in every Python the tests start
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_imports_the_copy(copy: Path, python: str) -> None:
    """The copy's tests must run the copy's code: the venv's editable install points at the checkout."""
    probe = (
        "import sys, launcher, observability, tests.support\n"
        "print(launcher.__file__); print(observability.__file__); print(tests.support.__file__)\n"
        "print('\\n'.join(sys.path))"
    )
    result = subprocess.run(
        [python, "-c", probe], cwd=copy, env=environment(copy), capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    modules, path = lines[:3], lines[3:]
    strays = [line for line in modules if not Path(line).resolve().is_relative_to(copy.resolve())]
    strays += [
        entry
        for entry in path
        if os.path.isabs(entry)  # not the editable install's path hook, a name rather than a place
        and Path(entry).resolve().is_relative_to(ROOT)
        and not Path(entry).resolve().is_relative_to(ROOT / ".venv")
    ]
    if strays:
        sys.exit(f"check-planted-bugs: the copy would run the checkout's code: {', '.join(strays)}")


def planted(text: str, bug: Any) -> str:
    """`text` with the bug's line replaced; refuses a bug whose line is not there exactly once."""
    lines = text.splitlines(keepends=True)
    where = [index for index, line in enumerate(lines) if line.strip() == bug.original]
    if len(where) != 1:
        sys.exit(
            f"check-planted-bugs: {bug.name}: the line is in {bug.path} {len(where)} times, not once: {bug.original}"
        )
    line = lines[where[0]]
    indent = line[: len(line) - len(line.lstrip())]
    lines[where[0]] = f"{indent}{bug.replacement}\n" if bug.replacement else ""
    return "".join(lines)


def forget_bytecode(path: Path) -> None:
    for cached in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
        cached.unlink()


def write(path: Path, text: str) -> None:
    path.write_text(text)
    forget_bytecode(path)


def check_planted_file(copy: Path, bug: Any, python: str) -> None:
    """A planted bug must be ordinary code: it compiles, and ruff finds nothing (else the linter catches it,
    not a test of the behaviour)."""
    path = copy / bug.path
    try:
        compile(path.read_text(), str(path), "exec")
    except SyntaxError as error:
        sys.exit(f"check-planted-bugs: {bug.name}: the planted file does not compile: {error}")
    lint = subprocess.run(
        [python, "-m", "ruff", "check", "--no-cache", "--quiet", str(path)], capture_output=True, text=True
    )
    if lint.returncode != 0:
        sys.exit(f"check-planted-bugs: {bug.name}: ruff finds fault with the planted line:\n{lint.stdout}")


def run_tests(
    copy: Path, python: str, tests: list[str], limit_s: float, deselect: tuple[str, ...] = ()
) -> tuple[bool | None, float, str]:
    """(failed, seconds, first failing test); failed is None when the tests ran past the limit."""
    command = [python, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider", "-m", "not vllm"]
    command += [option for test in deselect for option in ("--deselect", test)]
    started = time.monotonic()
    process = subprocess.Popen(
        [*command, *tests],
        cwd=copy,
        env=environment(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return None, time.monotonic() - started, ""
    except BaseException:  # interrupted: the tests (in a session of their own) go too
        os.killpg(process.pid, signal.SIGKILL)
        raise
    seconds = time.monotonic() - started
    # The short summary's lines ("FAILED tests/x.py::test - why"), not captured log lines ("ERROR    name:...").
    summary = [line.split() for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    failing = [words[1] for words in summary if words[1].startswith("tests/")]
    if process.returncode not in (0, 1):  # 2-5: interrupted, internal error, usage error, nothing collected
        failing = failing or [f"(pytest exit {process.returncode})"]
    return process.returncode != 0, seconds, failing[0] if failing else ""


def judge(
    copy: Path, python: str, bug: Any, original: str, tests: list[str], limit_s: float
) -> tuple[bool | None, float, str, tuple[str, ...]]:
    """(failed, seconds, first failing test, tests set aside) for one bug. The first failure counts when that test,
    run alone, fails with the bug and passes without it; otherwise (a timing test on a loaded machine) it judged
    the machine, not the bug: it is set aside and the bug's run repeated without it, at most MOST_SET_ASIDE times."""
    path = copy / bug.path
    set_aside: tuple[str, ...] = ()
    while True:
        write(path, planted(original, bug))
        try:
            failed, seconds, test = run_tests(copy, python, tests, limit_s, set_aside)
        finally:
            write(path, original)
        if not failed or not test.startswith("tests/") or len(set_aside) >= MOST_SET_ASIDE:
            return failed, seconds, test, set_aside
        # Confirmed when the test alone fails with the bug and passes without it.
        write(path, planted(original, bug))
        try:
            fails_with_the_bug = run_tests(copy, python, [test], limit_s)[0] is True
        finally:
            write(path, original)
        if fails_with_the_bug and run_tests(copy, python, [test], limit_s)[0] is False:
            return failed, seconds, test, set_aside
        set_aside += (test,)


def table(rows: list[tuple[str, str, str, str, str]]) -> str:
    header = ("#", "bug", "caught", "seconds", "first failing test")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    return "\n".join([lines[0], "  ".join("-" * width for width in widths), *lines[1:]])


def markdown(rows: list[tuple[str, str, str, str, str]]) -> str:
    out = ["| # | bug | caught | seconds | first failing test |", "|---|---|---|---|---|"]
    for n, bug, caught, seconds, test in rows:
        out.append(f"| {n} | {bug} | {caught} | {seconds} | {f'`{test}`' if test else ''} |")
    return "\n".join(out) + "\n"


def selected(only: str | None, count: int) -> list[int]:
    if not only:
        return list(range(1, count + 1))
    numbers = [int(part) for part in only.split(",") if part.strip()]
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        sys.exit(f"check-planted-bugs: --only: no bug numbered {bad[0]} (1-{count})")
    return numbers


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # so that the copy is removed and the running tests are stopped


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    options = argparse.ArgumentParser(prog="check-planted-bugs", description=__doc__.splitlines()[0])
    options.add_argument("--only", help="comma-separated bug numbers (1-based, in planted_bugs.py's order)")
    options.add_argument("--tests", nargs="+", default=list(FAST_TESTS), help="test paths (default: the fast set)")
    options.add_argument("--limit", type=float, default=LIMIT_S, help="seconds each run may take")
    options.add_argument("--no-baseline", action="store_true", help="skip the run without a bug")
    options.add_argument("--markdown", type=Path, help="write the table as Markdown to this file too")
    options.add_argument("--dry-run", action="store_true", help="check that each bug can be planted; run no test")
    args = options.parse_args()

    python = sys.executable
    bugs = load_bugs(ROOT)
    numbers = selected(args.only, len(bugs))
    with tempfile.TemporaryDirectory(prefix="swm-planted-bugs-") as scratch:
        copy = Path(scratch) / "checkout"
        copy_checkout(copy)
        check_imports_the_copy(copy, python)
        originals: dict[str, str] = {}
        for number in numbers:  # every bug is checked before anything runs
            bug = bugs[number - 1]
            path = copy / bug.path
            originals.setdefault(bug.path, path.read_text())
            write(path, planted(originals[bug.path], bug))
            try:
                check_planted_file(copy, bug, python)
            finally:
                write(path, originals[bug.path])
        if args.dry_run:
            print(f"each of the {len(numbers)} bug(s) can be planted: its line is there once, and ruff passes it")
            return 0
        print(f"checkout copied to {copy}; tests: {' '.join(args.tests)}", flush=True)
        if not args.no_baseline:
            failed, seconds, test = run_tests(copy, python, args.tests, args.limit)
            if failed is not False:
                print(f"without any bug the tests fail already ({test or 'past the limit'}, {seconds:.0f} s): "
                      "nothing can be judged", file=sys.stderr)  # fmt: skip
                return 2
            print(f"without a bug: all pass in {seconds:.0f} s", flush=True)
        rows = []
        flaky: set[str] = set()
        for number in numbers:
            bug = bugs[number - 1]
            failed, seconds, test, set_aside = judge(copy, python, bug, originals[bug.path], args.tests, args.limit)
            flaky.update(set_aside)
            caught = {True: "yes", False: "NO", None: "NO (limit)"}[failed]
            rows.append((str(number), bug.name, caught, f"{seconds:.0f}", test))
            aside = f" (set aside, not the bug's doing: {', '.join(set_aside)})" if set_aside else ""
            print(f"{number:>2} {bug.name}: {caught} in {seconds:.0f} s {test}{aside}", flush=True)
    print()
    print(table(rows))
    if flaky:
        print(f"\nset aside (alone, they passed with the bug or failed without it): {', '.join(sorted(flaky))}")
    if args.markdown:
        args.markdown.write_text(markdown(rows))
    survivors = [row[1] for row in rows if row[2] != "yes"]
    if survivors:
        print(f"\n{len(survivors)} bug(s) survive the tests: {', '.join(survivors)}", file=sys.stderr)
        return 1
    print(f"\nall {len(rows)} bug(s) caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
