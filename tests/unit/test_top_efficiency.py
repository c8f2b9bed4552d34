"""`top`'s energy and money per token (issue 29), from recorded pages: the stand-in exporter's
(tests/fixtures/exporter-standin-gpu-host.txt) and vLLM's (vllm_metrics_0.32.txt), changed copies of each."""

import re
from pathlib import Path

import pytest
from rich.console import Console

from launcher.states import ChildStatus, IncidentNote, SupervisorStatus
from launcher.top.render import render
from launcher.top.snapshot import Gpu, GpuProcess, History, Snapshot
from launcher.top.sources import Reading, parse_samples

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# The golden page masks the series that change between runs (<volatile>); top reads none of them.
EXPORTER = "\n".join(
    line for line in (FIXTURES / "exporter-standin-gpu-host.txt").read_text().splitlines() if "<volatile>" not in line
)
VLLM = (FIXTURES / "vllm_metrics_0.32.txt").read_text()
H100 = 'UUID="GPU-11111111-aaaa-bbbb-cccc-000000000000"'  # GPU 0
A10G = 'UUID="GPU-22222222-aaaa-bbbb-cccc-000000000000"'  # GPU 1


def exporter(energy: dict[str, float], vllm_uses: tuple[str, ...] = (H100,)) -> str:
    """The recorded page with each GPU's energy counter set, and vLLM on the GPUs named."""
    lines = []
    for line in EXPORTER.splitlines():
        for uuid, joules in energy.items():
            if line.startswith("swm_gpu_energy_joules_total{") and uuid in line:
                line = f"{line.rsplit(' ', 1)[0]} {joules}"
        if line.startswith("swm_gpu_used_by_vllm{"):
            line = f"{line.rsplit(' ', 1)[0]} {1.0 if any(uuid in line for uuid in vllm_uses) else 0.0}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def vllm(generated: float, prompt: float) -> str:
    page = re.sub(r"^(vllm:generation_tokens_total\{[^}]*\}) .*$", rf"\1 {generated}", VLLM, flags=re.M)
    return re.sub(r"^(vllm:prompt_tokens_total\{[^}]*\}) .*$", rf"\1 {prompt}", page, flags=re.M)


def window(first: Reading, second: Reading) -> Snapshot:
    history = History(window_s=60)
    history.add(first)
    history.add(second)
    return history.snapshot(second)


def status(**info: str) -> SupervisorStatus:
    return SupervisorStatus(launcher_pid=1, updated_at=0.0, info=info)


def screen(snap: Snapshot, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render(snap, width))
    return console.export_text()


def test_joules_per_token_from_vllms_gpus_and_the_windows_tokens():
    """GPU 0 (vLLM's) draws 300 W for 10 s; GPU 1 (a stranger's) 1000 W, not counted. vLLM made 100 generated
    and 200 prompt tokens: 3000 J / 300 tokens is 10 J a token, 30 per generated token."""
    first = Reading(at=1000.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 5e4, A10G: 0})))
    second = Reading(
        at=1010.0, vllm=parse_samples(vllm(124, 206)), exporter=parse_samples(exporter({H100: 53e3, A10G: 1e4}))
    )
    efficiency = window(first, second).as_json()["efficiency"]
    assert efficiency["energy_j"] == pytest.approx(3000)
    assert efficiency["power_w"] == pytest.approx(300)
    assert efficiency["vllm_gpus"] == 1
    assert efficiency["joules_per_token"] == pytest.approx(10)
    assert efficiency["joules_per_generation_token"] == pytest.approx(30)
    assert efficiency["tokens_per_kwh"] == pytest.approx(3.6e5)
    assert efficiency["gpu_hourly_cost"] is None and efficiency["cost_per_million_tokens"] is None
    text = screen(window(first, second))
    assert "efficiency J/token 10  J/gen tok 30  tok/kWh 360k" in text
    assert "cost/1M tok" not in text  # no --gpu-hourly-cost: no cost figure


def test_the_cost_per_million_tokens_comes_from_the_launchers_hourly_cost():
    """Two vLLM GPUs at 3.6 an hour for 10 s cost 0.02; over 400 tokens (100 generated), 50 per million tokens
    and 200 per million generated tokens."""
    info = status(gpu_hourly_cost="3.6")
    both = (H100, A10G)
    first = Reading(
        at=1000.0,
        status=info,
        vllm=parse_samples(vllm(24, 6)),
        exporter=parse_samples(exporter({H100: 0, A10G: 0}, both)),
    )
    second = Reading(
        at=1010.0,
        status=info,
        vllm=parse_samples(vllm(124, 306)),
        exporter=parse_samples(exporter({H100: 3000, A10G: 1000}, both)),
    )
    snap = window(first, second)
    assert snap.efficiency["joules_per_token"] == pytest.approx(4000 / 400)
    assert snap.efficiency["gpu_hourly_cost"] == 3.6
    assert snap.efficiency["cost_per_million_tokens"] == pytest.approx(50)
    assert snap.efficiency["cost_per_million_generation_tokens"] == pytest.approx(200)
    assert "cost/1M tok 50" in screen(snap)


@pytest.mark.parametrize("bad", ["0", "-2", "nan", "inf", "cheap"])
def test_an_unreadable_hourly_cost_gives_no_cost(bad):
    first = Reading(at=0.0, status=status(gpu_hourly_cost=bad), vllm=parse_samples(vllm(0, 0)),
                    exporter=parse_samples(exporter({H100: 0})))  # fmt: skip
    second = Reading(at=10.0, status=first.status, vllm=parse_samples(vllm(10, 0)),
                     exporter=parse_samples(exporter({H100: 10})))  # fmt: skip
    assert window(first, second).efficiency["cost_per_million_tokens"] is None


def test_no_token_in_the_window_gives_no_figure_never_inf():
    first = Reading(at=0.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 0})))
    second = Reading(at=10.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 500})))
    efficiency = window(first, second).efficiency
    assert efficiency["energy_j"] == 500
    assert efficiency["joules_per_token"] is None and efficiency["tokens_per_kwh"] is None
    assert "efficiency J/token -  J/gen tok -  tok/kWh -" in screen(window(first, second))


def test_no_line_without_energy_data_and_none_across_a_reset():
    plain = window(Reading(at=0.0, vllm=parse_samples(VLLM)), Reading(at=10.0, vllm=parse_samples(VLLM)))
    assert plain.efficiency["energy_j"] is None and "efficiency" not in screen(plain)
    # The exporter restarted and its integrated counter began again from 0: no figure across that
    reset = window(
        Reading(at=0.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 9000}))),
        Reading(at=10.0, vllm=parse_samples(vllm(124, 6)), exporter=parse_samples(exporter({H100: 100}))),
    )
    assert reset.efficiency["energy_j"] is None and "efficiency" not in screen(reset)
    # No GPU of vLLM's (the recorded page: only strangers' processes)
    strangers = window(
        Reading(at=0.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 0}, ()))),
        Reading(at=10.0, vllm=parse_samples(vllm(124, 6)), exporter=parse_samples(exporter({H100: 10}, ()))),
    )
    assert strangers.efficiency["vllm_gpus"] == 0 and "efficiency" not in screen(strangers)


def test_the_fullest_screen_with_the_efficiency_line_fits_80x24():
    note = IncidentNote(995.0, "stalled", "/state/incidents/20261204T120000Z-stalled", "no progress for 8 s")
    children = [
        ChildStatus(
            "vllm", "backoff", True, 1, 3, 1, 900.0, 990.0, reason="health check failed 3 times", last_incident=note
        ),
        *(
            ChildStatus(name, "healthy", False, 2, 0, None, 900.0, 990.0)
            for name in ("exporter", "prometheus", "alertmanager", "grafana")
        ),
    ]
    snap = window(
        Reading(at=0.0, vllm=parse_samples(vllm(24, 6)), exporter=parse_samples(exporter({H100: 0}))),
        Reading(
            at=10.0,
            status=SupervisorStatus(launcher_pid=1, updated_at=0.0, children=children, info={"gpu_hourly_cost": "2"}),
            vllm=parse_samples(vllm(124, 6)),
            exporter=parse_samples(exporter({H100: 3000})),
        ),
    )
    snap.waiting_for = ["cannot reach Prometheus at http://127.0.0.1:9090: connection refused"]
    snap.engines = [
        {"engine": str(n), "running": 1, "waiting": 0, "kv_cache_usage_ratio": 0.5, "finished_in_window": 3}
        for n in range(2)
    ]
    snap.gpus = [Gpu(str(n), "NVIDIA H100 80GB HBM3", 0.9, 7e10, 8e10, 70, 650) for n in range(8)]
    snap.gpu_processes = [GpuProcess(str(n), str(1000 + n), "python3", 7e10, True) for n in range(8)]
    snap.alerts = [{"name": f"Alert{n}", "severity": "critical", "summary": "x" * 100} for n in range(5)]
    text = screen(snap)
    assert "efficiency J/token" in text and "cost/1M tok" in text
    lines = text.rstrip("\n").splitlines()
    assert len(lines) <= 24, "\n".join(lines)
    assert max(len(line.rstrip()) for line in lines) <= 80
