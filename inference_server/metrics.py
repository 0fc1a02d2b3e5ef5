"""Prometheus metrics on their own HTTP port: queue depth, jobs by state, step time, frames/s, GPU memory.

Step and frame metrics are derived from the job event stream (JobStore listener), so the worker needs no
metrics code; queue and state gauges are read from the store at scrape time, so they are never stale.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from genfx.proto import genfx_pb2 as pb
from inference_server.jobs import JobStore

FPS_WINDOW_S = 60.0
STEP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    def __init__(self, store: JobStore, devices: Callable[[], Sequence[str]]) -> None:
        """``devices()``: the workers' devices now (they start after the metrics endpoint)."""
        self.registry = CollectorRegistry()
        self.steps = Histogram(
            "genfx_step_seconds", "Time of one denoising step", registry=self.registry, buckets=STEP_BUCKETS
        )
        self.frames = Counter("genfx_frames", "Frames written", registry=self.registry)
        self.events = Counter("genfx_job_events", "Job events by kind", ["kind"], registry=self.registry)
        self._last_step: dict[str, tuple[int, int, float]] = {}  # job -> (frame, step, time)
        self._frame_times: deque[float] = deque()
        self._lock = threading.Lock()
        self.registry.register(_StoreCollector(store, devices, self))
        store.add_listener(self.on_event)

    def on_event(self, event: pb.JobEvent) -> None:
        kind = event.WhichOneof("kind") or "unknown"
        self.events.labels(kind).inc()
        now = time.monotonic()
        with self._lock:
            if kind == "progress":
                p = event.progress
                last = self._last_step.get(event.job_id)
                # Only consecutive steps of one frame measure a step (the first includes set-up).
                if last and last[0] == p.frame and last[1] == p.step - 1:
                    self.steps.observe(now - last[2])
                self._last_step[event.job_id] = (p.frame, p.step, now)
            elif kind == "frame_done":
                self.frames.inc()
                self._frame_times.append(now)
            elif kind == "state" and event.state.state in (
                pb.JOB_STATE_SUCCEEDED,
                pb.JOB_STATE_FAILED,
                pb.JOB_STATE_CANCELLED,
            ):
                self._last_step.pop(event.job_id, None)

    def frames_per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            while self._frame_times and now - self._frame_times[0] > FPS_WINDOW_S:
                self._frame_times.popleft()
            return len(self._frame_times) / FPS_WINDOW_S

    def serve(self, host: str, port: int) -> int:
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_address[1])


class _StoreCollector(Collector):
    def __init__(self, store: JobStore, devices: Callable[[], Sequence[str]], metrics: ServerMetrics) -> None:
        self.store = store
        self.devices = devices
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.store.count_by_state()
        queue = GaugeMetricFamily("genfx_queue_depth", "Jobs waiting for a worker")
        queue.add_metric([], counts.get(pb.JOB_STATE_QUEUED, 0))
        yield queue
        by_state = GaugeMetricFamily("genfx_jobs", "Jobs by state", labels=["state"])
        for value, name in ((v, pb.JobState.Name(v)) for v in pb.JobState.values()):
            if value != pb.JOB_STATE_UNSPECIFIED:
                by_state.add_metric([name.removeprefix("JOB_STATE_").lower()], counts.get(value, 0))
        yield by_state
        fps = GaugeMetricFamily(
            "genfx_frames_per_second", f"Frames written per second, last {FPS_WINDOW_S:.0f} s"
        )
        fps.add_metric([], self.metrics.frames_per_second())
        yield fps
        cuda = [d for d in self.devices() if d.startswith("cuda")]
        if cuda:
            import torch

            mem = GaugeMetricFamily(
                "genfx_gpu_memory_bytes", "GPU memory allocated by torch", labels=["device"]
            )
            for device in cuda:
                mem.add_metric([device], float(torch.cuda.memory_allocated(torch.device(device))))
            yield mem
