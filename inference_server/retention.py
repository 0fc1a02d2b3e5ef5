"""Job retention: jobs that ended more than ``hours`` ago are deleted, record and frames together
(JobStore.delete). 0 hours keeps every job until DeleteJob."""

from __future__ import annotations

import logging
import time

from inference_server.jobs import JobNotEnded, JobNotFound, JobStore

log = logging.getLogger("genfx.retention")

BATCH = 100


def sweep_interval_s(hours: float) -> float:
    """How often to look: a quarter of the retention time, between 1 s and an hour."""
    return min(3600.0, max(1.0, hours * 3600.0 / 4))


def sweep(store: JobStore, hours: float, now: float | None = None) -> list[str]:
    """Deletes every job that ended before ``now - hours``; returns their ids."""
    cutoff = (time.time() if now is None else now) - hours * 3600.0
    deleted: list[str] = []
    while True:
        batch = store.ended_before(cutoff, BATCH)
        for job_id in batch:
            try:
                frames = store.delete(job_id)
            except (JobNotFound, JobNotEnded):  # deleted or requeued meanwhile
                continue
            deleted.append(job_id)
            log.info("job %s deleted by retention (%d frames)", job_id, frames, extra={"job_id": job_id})
        if len(batch) < BATCH:
            return deleted
