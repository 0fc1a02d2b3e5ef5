"""Recent seconds per denoising step on this server, per model, stage and generation size.

Jobs record each keyframe's diffusion and upscale (engine ``StageTime``); ``genfx info`` shows the
medians (``ServerInfo.step_times``) and job estimates read them (``estimate.py``). Memory only: a
restarted server learns again from its first keyframe.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from dataclasses import dataclass

from genfx.proto import genfx_pb2 as pb
from inference_server.engine.mode import StageTime

WINDOW = 20  # keyframes per (model, stage, size): recent enough to follow a busy or cooling device


@dataclass(frozen=True)
class PerStep:
    """Seconds per step for a size, and where the number comes from."""

    seconds: float
    measured_at: tuple[int, int]  # the generation size it was measured at (scaled by pixels if not ours)
    samples: int


class StepTimes:
    def __init__(self, window: int = WINDOW) -> None:
        self._window = window
        self._lock = threading.Lock()
        self._samples: dict[tuple[str, str, tuple[int, int]], deque[float]] = {}

    def record(self, model: str, stage: StageTime) -> None:
        if stage.steps <= 0:
            return
        key = (model, stage.stage, stage.size)
        with self._lock:
            samples = self._samples.setdefault(key, deque(maxlen=self._window))
            samples.append(stage.seconds / stage.steps)

    def per_step(self, model: str, stage: str, size: tuple[int, int]) -> PerStep | None:
        """The median at this size; else the nearest size measured for the model and stage, scaled by
        pixel count (a step's work grows with the latent's area); None when nothing was measured."""
        with self._lock:
            known = {k[2]: list(v) for k, v in self._samples.items() if k[:2] == (model, stage) and v}
        if not known:
            return None
        area = size[0] * size[1]
        nearest = size if size in known else min(known, key=lambda s: abs(s[0] * s[1] - area))
        median = statistics.median(known[nearest])
        scale = area / (nearest[0] * nearest[1])
        return PerStep(median * scale, nearest, len(known[nearest]))

    def to_proto(self) -> list[pb.StepTime]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._samples.items() if v)
        return [
            pb.StepTime(
                model=model,
                stage=stage,
                width=size[0],
                height=size[1],
                seconds_per_step=statistics.median(values),
                samples=len(values),
            )
            for (model, stage, size), values in items
        ]
