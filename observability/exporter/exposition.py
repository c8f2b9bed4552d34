"""Builds the /metrics body from pre-rendered snapshots; caches it until a snapshot changes."""

from __future__ import annotations

import gzip
import threading
from functools import partial

from prometheus_client import exposition as text_format
from prometheus_client.openmetrics import exposition as openmetrics

from observability.exporter.collection import SnapshotRegistry, self_metrics
from observability.exporter.rendering import EOF_MARKER, Encoder, render

_GZIP_ABOVE_BYTES = 4096


def choose_encoder(accept: str) -> tuple[Encoder, str]:
    """prometheus_client's encoder and content type for this Accept header, with one substitution.

    Asked for OpenMetrics with underscores escaping (what Prometheus asks for), its encoder escapes every
    sample name one character at a time, which took half of the exporter's idle CPU. For a name in the
    legacy character set without a colon, which every name this exporter writes is, that escaping
    changes nothing, and its allow-utf-8 path, which passes such a name through at C speed, writes the
    same bytes (tests/unit/test_exposition.py compares them). The content type stays the negotiated one.
    """
    encoder, content_type = text_format.choose_encoder(accept)
    if (
        isinstance(encoder, partial)
        and encoder.func is openmetrics.generate_latest
        and encoder.keywords.get("escaping") == openmetrics.UNDERSCORES
    ):
        keywords = {**encoder.keywords, "escaping": openmetrics.ALLOWUTF8}
        encoder = partial(openmetrics.generate_latest, *encoder.args, **keywords)
    return encoder, content_type


class Exposition:
    def __init__(self, registry: SnapshotRegistry) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        # Keyed by the snapshot objects themselves (compared with `is`): ids of freed objects get reused.
        self._cache: dict[tuple[str, bool], tuple[tuple[object, ...], bytes]] = {}

    def body(self, accept: str, accepts_gzip: bool) -> tuple[bytes, str, bool]:
        """(body, content type, gzipped)"""
        encoder, content_type = choose_encoder(accept)
        self._registry.formats.want(content_type, encoder)
        snapshots = self._registry.snapshots()
        version = tuple(snapshot for _, snapshot in snapshots)
        key = (content_type, accepts_gzip)
        with self._lock:
            cached = self._cache.get(key)
        if (
            cached is not None
            and len(cached[0]) == len(version)
            and all(old is new for old, new in zip(cached[0], version, strict=True))
        ):
            return cached[1], content_type, accepts_gzip and cached[1][:2] == b"\x1f\x8b"
        parts = [snapshot.text(content_type, encoder) for _, snapshot in snapshots]
        parts.append(render(self_metrics(snapshots), encoder))
        if content_type.startswith("application/openmetrics-text"):
            parts.append(EOF_MARKER)
        body = b"".join(parts)
        compressed = accepts_gzip and len(body) > _GZIP_ABOVE_BYTES
        if compressed:
            body = gzip.compress(body, compresslevel=1)
        with self._lock:
            self._cache[key] = (version, body)
        return body, content_type, compressed
