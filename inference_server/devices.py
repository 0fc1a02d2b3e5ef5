"""This process's compute devices: which there are, and how GetServerInfo describes them. Used by the
local executor for its worker threads and by each Ray render actor for the GPU it was given."""

from __future__ import annotations

import os
import platform


def detect_devices() -> list[str]:
    import torch

    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def device_description(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def device_memory(device: str) -> int:
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return 0
