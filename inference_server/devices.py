"""This process's compute devices: which there are, whether a worker can run on one, and how
GetServerInfo describes them. Used by the local executor for its worker threads and by each Ray render
actor for the GPU it was given."""

from __future__ import annotations

import importlib.util
import os
import platform
import re
from pathlib import Path


def torch_may_have_cuda() -> bool:
    """False when the installed torch is a build without CUDA or ROCm, read from its ``version.py``
    without importing torch (a multi-second import); True when unsure."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return True
    try:
        return version_may_have_gpu((Path(spec.origin).parent / "version.py").read_text(encoding="utf-8"))
    except OSError:
        return True


def version_may_have_gpu(version_py: str) -> bool:
    """From torch's generated ``version.py``: ``cuda = None`` and ``hip = None`` mean a CPU-only build."""
    builds = re.findall(r"^(cuda|hip)\s*(?::[^=]*)?=\s*(.+?)\s*$", version_py, flags=re.MULTILINE)
    return len(builds) < 2 or any(value != "None" for _, value in builds)


def detect_devices() -> list[str]:
    """CUDA devices, else the CPU. A CPU-only torch build is recognised without importing torch."""
    if not torch_may_have_cuda():
        return ["cpu"]
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def device_problem(device: str) -> str:
    """Why a worker cannot run jobs on ``device`` ("" when it can). CUDA devices are checked with torch
    (importing torch: seconds, paid once, when the worker starts)."""
    if device == "cpu":
        return ""
    kind, _, index = device.partition(":")
    if kind != "cuda" or not index.isdigit():
        return f"unknown device {device!r} (expected cpu or cuda:N)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    if int(index) >= torch.cuda.device_count():
        return f"torch sees {torch.cuda.device_count()} CUDA device(s)"
    return ""


def device_description(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        try:
            return str(torch.cuda.get_device_name(torch.device(device)))
        except (RuntimeError, AssertionError, ValueError) as exc:  # a device this machine has not got
            return f"unavailable: {exc}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def device_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        try:
            return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
        except (RuntimeError, AssertionError, ValueError):
            return 0
    return 0
