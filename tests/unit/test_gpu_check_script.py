"""scripts/gpu-check's verdict logic, fed with scrapes of the exporter over the NVML HARDWARE STAND-IN.

The script itself needs a real GPU; this only checks that it judges scrapes correctly.
"""

import importlib.machinery
import importlib.util
from pathlib import Path

from observability.exporter.build import build_registry
from observability.exporter.exposition import Exposition
from tests.support.standins.nvml_hardware_standin import NvmlHardwareStandIn, two_different_gpus

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu-check"


def load_script():
    loader = importlib.machinery.SourceFileLoader("gpu_check", str(SCRIPT))
    spec = importlib.util.spec_from_loader("gpu_check", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def scrape(standin, tmp_path):
    registry = build_registry("h", 60.0, None, tmp_path, nvml_library=standin.library())
    for collection in registry.collections:
        collection.collect_once()
    return Exposition(registry).body("", False)[0].decode()


def test_a_load_that_shows_up_passes(tmp_path):
    gpu_check = load_script()
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.gpus[0].gpu_util, standin.gpus[0].memory_used_mib = 0, 500
    baseline = gpu_check.parse(scrape(standin, tmp_path))
    standin.gpus[0].gpu_util, standin.gpus[0].memory_used_mib = 99, 1500
    standin.gpus[0].processes = [(4242, 2**30)]
    report = gpu_check.evaluate(baseline, [gpu_check.parse(scrape(standin, tmp_path))], 0, 4242)
    assert report["passed"], report


def test_a_load_that_does_not_show_up_fails_each_check(tmp_path):
    gpu_check = load_script()
    standin = NvmlHardwareStandIn(two_different_gpus())
    standin.gpus[0].gpu_util = 0
    found = gpu_check.parse(scrape(standin, tmp_path))
    report = gpu_check.evaluate(found, [found], 0, 4242)
    assert not report["passed"]
    assert report["checks"] == {
        "nvml_up": True,
        "gpu_utilization_rose_above_0": False,
        "framebuffer_used_grew": False,
        "load_pid_in_per_process_memory": False,
        "every_golden_family_present_or_explained": True,
    }


def test_a_family_missing_without_a_reason_fails_the_check(tmp_path):
    gpu_check = load_script()
    found = gpu_check.parse(scrape(NvmlHardwareStandIn(two_different_gpus()), tmp_path))
    del found["DCGM_FI_DEV_FB_USED"]
    found.pop("DCGM_FI_PROF_SM_ACTIVE", None)  # one collection: GPM needs two samples anyway
    report = gpu_check.family_report(found)
    assert report["unexplained"] == ["DCGM_FI_DEV_FB_USED"]
    assert "DCGM_FI_PROF_SM_ACTIVE" in report["explained"]
