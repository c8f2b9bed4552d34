"""YAML as a settings file needs it, and no more: bounded in size, without anchors, aliases or merge keys
(an alias bomb expands a few hundred bytes into gigabytes, and one alias under another key turns a small
file into a huge value), and without a key given twice (YAML lets the last one win in silence)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from launcher.settings.shown_values import shortened, shown

MAX_BYTES = 1024 * 1024  # a settings file is a few kB; this is far beyond any real one
MAX_DEPTH = 64  # vLLM's deepest JSON options nest three or four levels


class PlainYamlError(Exception):
    """What is wrong, in one line, and where when it is known ('line 3, column 5'). `invalid`: the text is
    not YAML at all, rather than YAML this loader refuses."""

    def __init__(self, problem: str, where: str | None = None, invalid: bool = False) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.problem = problem
        self.where = where
        self.invalid = invalid


class _PlainLoader(yaml.SafeLoader):
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused("anchors and aliases (&name, *name) are not accepted; write each value out", event)
        if self._depth >= MAX_DEPTH:
            raise _refused(f"nested deeper than {MAX_DEPTH} levels", event)
        self._depth += 1
        try:
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _refused("merge keys (<<) are not accepted; write each key out", key_node)
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise _refused("a key must be a plain value, not a list or mapping", key_node) from None
            if duplicate:
                raise _refused(f"key {shown(key)} is given twice; keep one", key_node)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _at(mark: yaml.Mark | None) -> str | None:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else None


def _refused(problem: str, where: yaml.Node | yaml.Event) -> PlainYamlError:
    return PlainYamlError(problem, _at(where.start_mark))


def read_bounded(path: Path, limit: int = MAX_BYTES) -> str:
    """The file's text; at most limit + 1 bytes are read, so that /dev/zero or a huge file is refused at once.
    Raises OSError, or PlainYamlError for a file too large or not UTF-8."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PlainYamlError(f"larger than {limit // 1024} KiB; a settings file is far smaller")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise PlainYamlError("not UTF-8 text") from None


def load_plain_yaml(text: str) -> Any:
    """The document, or PlainYamlError saying in one line what is wrong and where."""
    try:
        return yaml.load(text, Loader=_PlainLoader)  # noqa: S506 - a SafeLoader, further restricted
    except yaml.MarkedYAMLError as error:
        problem = shortened(error.problem or "invalid YAML")
        raise PlainYamlError(problem, _at(error.problem_mark), invalid=True) from None
    except yaml.YAMLError as error:
        raise PlainYamlError(shortened(str(error).replace("\n", " ")), invalid=True) from None
    except RecursionError:
        raise PlainYamlError("nested too deeply") from None
    except ValueError as error:  # an integer of more than 4300 digits, a date out of range
        raise PlainYamlError(f"a value cannot be read ({shortened(str(error))})") from None
