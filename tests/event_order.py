"""What every watcher of a job must see (genfx.proto JobEvent): stored events (state changes, frames)
once each with seq 1, 2, 3 ... ; live progress events only after the stored event whose seq they carry;
the job's final state last."""

from __future__ import annotations

from genfx.proto import genfx_pb2 as pb


def event_order_problems(seen: list[pb.JobEvent], job: pb.Job) -> list[str]:
    """Stored events once each, in order; live progress only ever after the stored event it names."""
    problems = []
    stored = [e.seq for e in seen if e.WhichOneof("kind") != "progress"]
    if stored != list(range(1, len(stored) + 1)) or stored[-1:] != [job.last_seq]:
        problems.append(f"watcher saw stored seqs with a gap or a repeat: {stored} (last_seq {job.last_seq})")
    latest = 0
    for event in seen:
        if event.WhichOneof("kind") != "progress":
            latest = event.seq
        elif event.seq != latest:
            problems.append(f"progress event with seq {event.seq} after stored event {latest}")
            break
    if not seen or seen[-1].WhichOneof("kind") != "state" or seen[-1].state.state != job.state:
        problems.append("watcher did not end on the final state")
    return problems
