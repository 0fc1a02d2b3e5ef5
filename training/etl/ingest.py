"""``genfx-train ingest SRC... --out DATASET``: plan, refuse what is not licensed, run on Ray Data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.etl.buckets import parse_bucket
from training.etl.pipeline import run_plan
from training.etl.plan import check_or_save_plan, make_plan

DEFAULT_BUCKETS = ("512x512",)


@dataclass(frozen=True)
class IngestSettings:
    buckets: tuple[str, ...] = DEFAULT_BUCKETS
    shard_size: int = 256
    ray_address: str | None = None
    workers: int | None = None
    latent_model: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class NothingToIngest(ValueError):
    """Every source was refused (the message lists them)."""


def ingest(sources: list[Path], out: Path, settings: IngestSettings) -> dict[str, Any]:
    """Build (or resume) the dataset in ``out``; returns its manifest."""
    if settings.shard_size < 1:
        raise ValueError(f"shard size: must be >= 1 (got {settings.shard_size})")
    buckets = [list(parse_bucket(b)) for b in settings.buckets]
    plan_settings: dict[str, Any] = {"buckets": buckets, "shard_size": settings.shard_size}
    if settings.latent_model is not None:
        from inference_server.models import model_hash

        plan_settings["latent_model_sha256"] = model_hash(Path(settings.latent_model))
    plan = make_plan([Path(s) for s in sources], plan_settings, settings.shard_size)
    if not plan.sources:
        reasons = "\n  ".join(r["reason"] for r in plan.refused)
        raise NothingToIngest(f"no source accepted; refused:\n  {reasons}")
    out = Path(out)
    check_or_save_plan(out, plan)
    return run_plan(
        plan,
        out,
        ray_address=settings.ray_address,
        workers=settings.workers,
        latent_model=settings.latent_model,
    )
