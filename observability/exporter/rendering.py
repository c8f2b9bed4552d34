"""Metric families as exposition text, through prometheus_client's encoders, one family at a time.

Most families come out of a collection as they went in (a child's state, a GPU's name and limits, the
filesystems' sizes), and rendering is the larger part of a collection's cost. So each collection keeps
the text of the families it rendered last time, keyed by everything that goes into that text, and
renders again only the families whose samples moved.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from prometheus_client.core import Metric

Encoder = Callable[[object], bytes]
EOF_MARKER = b"# EOF\n"


class _Families:
    """What prometheus_client's encoders expect: something with collect()."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def render(families: Iterable[Metric], encoder: Encoder) -> bytes:
    """Families as exposition text, without OpenMetrics' closing '# EOF' (added once per scrape)."""
    text = encoder(_Families(families))
    return text[: -len(EOF_MARKER)] if text.endswith(EOF_MARKER) else text


def _family_key(family: Metric) -> Hashable | None:
    """Everything an encoder reads from the family; None where a part cannot be a key (an exemplar)."""
    try:
        samples = tuple(
            (s.name, tuple(s.labels.items()), s.value, s.timestamp, s.exemplar, s.native_histogram)
            for s in family.samples
        )
        key = (family.name, family.type, family.documentation, family.unit, samples)
        hash(key)
    except TypeError:
        return None
    return key


class FamilyTexts:
    """One content type's rendered families, from one collection to the next."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self._last: dict[Hashable, bytes] = {}

    def render(self, families: Iterable[Metric]) -> bytes:
        kept: dict[Hashable, bytes] = {}
        parts = []
        for family in families:
            key = _family_key(family)
            text = self._last.get(key) if key is not None else None
            if text is None:
                text = render([family], self._encoder)
            if key is not None:
                kept[key] = text
            parts.append(text)
        self._last = kept  # only this collection's: what moved is not kept
        return b"".join(parts)
