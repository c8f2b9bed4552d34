"""Reads one GPU for one collection, asking NVML each question once even when several fields need it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from observability.exporter.nvml_api import Nvml


class GpuReader:
    def __init__(self, nvml: Nvml, index: int, handle: Any) -> None:
        self.nvml = nvml
        self.lib = nvml.lib
        self.index = index
        self.handle = handle
        self._answers: dict[tuple[Any, ...], Any] = {}

    def call(self, function_name: str, *args: Any) -> Any:
        """NVML's answer, None when unsupported (or unknown to this NVML); GpuLost propagates."""
        key = (function_name, *args)
        if key not in self._answers:
            function = getattr(self.lib, function_name, None)
            self._answers[key] = None if function is None else self.nvml.call(self.index, function, self.handle, *args)
        return self._answers[key]

    def answer(self, key: str, ask: Callable[[], Any]) -> Any:
        """`ask()`, once per collection, for answers that are not a single NVML call."""
        if (key,) not in self._answers:
            self._answers[(key,)] = ask()
        return self._answers[(key,)]

    def constant(self, name: str) -> Any:
        return getattr(self.lib, name, None)
