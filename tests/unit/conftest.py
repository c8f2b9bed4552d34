from pathlib import Path

import pytest

from launcher.supervision.orphan_guard import OrphanGuard
from launcher.vllm_server.capabilities import VllmCapabilities, parse_help

HELP_0_32 = Path(__file__).resolve().parents[1] / "fixtures" / "vllm_serve_help_0.32.txt"


@pytest.fixture
def caps_0_32() -> VllmCapabilities:
    """Options of vLLM 0.32 as its own --help printed them (an excerpt)."""
    arity = parse_help(HELP_0_32.read_text())
    arity.update(
        {
            "--host": "1",
            "--model": "1",
            "--max-model-len": "1",
            "--enforce-eager": "0",
            "--dtype": "1",
            "--kv-cache-memory-bytes": "1",
            "--ssl-certfile": "1",
            "--uds": "1",
            "--disable-access-log-for-endpoints": "1",
        }
    )
    return VllmCapabilities(version="0.32.0+cpu", arity=arity)


@pytest.fixture
def caps_old() -> VllmCapabilities:
    """A vLLM from before the request-logging flag flipped (0.10 era)."""
    return VllmCapabilities(
        version="0.10.0",
        arity={
            "--port": "1",
            "--host": "1",
            "--disable-log-requests": "0",
            "--disable-log-stats": "0",
            "--served-model-name": "+",
            "--api-key": "1",
        },
    )


@pytest.fixture
def guard():
    """A real orphan guard, as the launcher starts one."""
    orphan_guard = OrphanGuard()
    orphan_guard.start()
    yield orphan_guard
    orphan_guard.close()
