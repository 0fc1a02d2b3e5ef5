"""Model registry: named local diffusers model folders plus the built-in tiny model.

Nothing here reaches the network: every folder is local and loaded with ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import third_party
from .acceleration import Acceleration
from .acceleration import apply as apply_acceleration
from .engine import modes
from .engine.mode import ModelFacts
from .tiny_model import VARIANTS_FILE, ensure_tiny_model

TINY_NAME = "tiny"
HASH_CACHE_NAME = ".genfx_hash.json"
_HASH_BLOCK = 1 << 20
_HASH_CACHE_VERSION = 1


@dataclass(frozen=True)
class ModelInfo:
    name: str
    family: str
    path: Path
    native_width: int
    native_height: int
    capabilities: tuple[str, ...]
    hash: str
    # Folder of each companion pipeline (a mode's PipelineSpec.variant: "depth", "inpaint",
    # "upscale_x4"); the model's own folder when the main UNet is itself a depth or inpainting UNet.
    variants: Mapping[str, Path] = field(default_factory=dict)


class UnknownModelError(KeyError):
    """A model name the registry doesn't know; the message lists the known names."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:  # KeyError's default str() would just repr the key
        return f"unknown model {self.name!r}; known models: {', '.join(self.known)}"


def _check_model_dir(name: str, path: Path) -> None:
    if not path.is_dir():
        raise ValueError(f"model {name!r}: {path} is not a directory")
    if not (path / "model_index.json").is_file():
        raise ValueError(f"model {name!r}: {path} has no model_index.json (not a diffusers model folder)")


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def _family(index: Mapping[str, Any], unet_cfg: Mapping[str, Any]) -> str:
    # SD2 introduced linear projections in the UNet transformer blocks; SD1.x uses convolutions.
    cls = str(index.get("_class_name", ""))
    if "XL" in cls:
        return "sdxl"
    if cls.startswith("StableDiffusion"):
        return "sd2" if unet_cfg.get("use_linear_projection") else "sd1"
    return cls.lower() or "unknown"


def _unet_channels(path: Path) -> int:
    return int(_read_json(path / "unet" / "config.json").get("in_channels", 4))


def _variants(name: str, path: Path, main_channels: int) -> dict[str, Path]:
    """Companion pipelines from ``genfx.json`` (paths relative to the model folder), checked:
    ``{"variants": {"depth": "../sd2-depth", "upscale_x4": "../x4-upscaler"}}``."""
    out: dict[str, Path] = {
        kind: path for kind, channels in modes.VARIANT_CHANNELS.items() if channels == main_channels
    }
    sidecar = path / VARIANTS_FILE
    if not sidecar.is_file():
        return out
    raw = _read_json(sidecar).get("variants", {})
    if not isinstance(raw, dict):
        raise ValueError(f"model {name!r}: {sidecar}: 'variants' must be an object")
    for kind, rel in raw.items():
        if kind not in modes.VARIANT_CHANNELS or not isinstance(rel, str):
            known = ", ".join(modes.VARIANT_CHANNELS)
            raise ValueError(f"model {name!r}: {sidecar}: unknown variant {kind!r} (known: {known})")
        vpath = (path / rel).resolve()
        _check_model_dir(f"{name}/{kind}", vpath)
        want = modes.VARIANT_CHANNELS[kind]
        if _unet_channels(vpath) != want:
            raise ValueError(f"model {name!r}: variant {kind!r} at {vpath} needs a {want}-channel UNet")
        out[kind] = vpath
    return out


def _native_size(unet_cfg: Mapping[str, Any], vae_cfg: Mapping[str, Any]) -> tuple[int, int]:
    scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    sample = unet_cfg["sample_size"]
    # sample_size is an int, or (height, width) for non-square models.
    h, w = (sample, sample) if isinstance(sample, int) else (int(sample[0]), int(sample[1]))
    return w * scale, h * scale


class ModelRegistry:
    """Named models: the configured local folders, plus the built-in "tiny" model (built lazily)."""

    def __init__(
        self,
        models: Mapping[str, Path],
        cache_dir: Path,
        include_tiny: bool = True,
        acceleration: Acceleration | None = None,
    ) -> None:
        self._paths: dict[str, Path] = {}
        for name, raw in models.items():
            if include_tiny and name == TINY_NAME:
                raise ValueError(f"model name {TINY_NAME!r} is reserved for the built-in test model")
            path = Path(raw).expanduser()
            _check_model_dir(name, path)
            self._paths[name] = path
        if not self._paths and not include_tiny:
            raise ValueError("no models configured")
        self._cache_dir = Path(cache_dir)
        self._include_tiny = include_tiny
        self.acceleration = acceleration or Acceleration()
        self._default = next(iter(self._paths), TINY_NAME)
        self._lock = threading.RLock()
        self._infos: dict[str, ModelInfo] = {}
        self._pipelines: dict[tuple[str, str, str], Any] = {}

    def names(self) -> list[str]:
        names = list(self._paths)
        if self._include_tiny:
            names.append(TINY_NAME)
        names.remove(self._default)
        return [self._default, *names]

    def default_name(self) -> str:
        return self._default

    def path(self, name: str) -> Path:
        """The model's folder; builds the tiny model on first use."""
        if name in self._paths:
            return self._paths[name]
        if self._include_tiny and name == TINY_NAME:
            with self._lock:
                return ensure_tiny_model(self._cache_dir)
        raise UnknownModelError(name, self.names())

    def info(self, name: str) -> ModelInfo:
        with self._lock:
            cached = self._infos.get(name)
            if cached is not None:
                return cached
            path = self.path(name)
            index = _read_json(path / "model_index.json")
            unet_cfg = _read_json(path / "unet" / "config.json")
            vae_cfg = _read_json(path / "vae" / "config.json")
            width, height = _native_size(unet_cfg, vae_cfg)
            main_channels = int(unet_cfg.get("in_channels", 4))
            variants = _variants(name, path, main_channels)
            info = ModelInfo(
                name=name,
                family=_family(index, unet_cfg),
                path=path,
                native_width=width,
                native_height=height,
                capabilities=modes.capabilities(ModelFacts(main_channels, frozenset(variants))),
                hash=model_hash(path),
                variants=variants,
            )
            self._infos[name] = info
            return info

    def load(self, name: str, device: str, mode: str = "txt2img") -> Any:
        """The diffusers pipeline that runs ``mode`` for ``name`` on ``device``, loaded once and cached.

        A mode with its own companion folder (its PipelineSpec.variant, when the model has one) loads
        it; otherwise it shares the main folder's components with the txt2img pipeline (``from_pipe``).
        """
        with self._lock:
            key = (name, device, mode)
            pipe = self._pipelines.get(key)
            if pipe is not None:
                return pipe
            third_party.quiet()
            import diffusers

            info = self.info(name)
            spec = modes.get(mode).pipeline
            if spec is None or mode not in info.capabilities:
                raise ValueError(f"model {name!r} has no pipeline for mode {mode!r}")
            cls: Any = getattr(diffusers, spec.cls)
            variant = info.variants.get(spec.variant) if spec.variant else None
            if variant is not None:
                pipe = self._from_pretrained(cls, variant, device, **spec.load_kwargs)
            elif mode == "txt2img":
                pipe = self._from_pretrained(cls, info.path, device)
            else:
                base = self.load(name, device, "txt2img")
                # from_pipe casts the shared components to its dtype argument (default fp32): keep theirs.
                pipe = cls.from_pipe(base, dtype=base.dtype)
            pipe.set_progress_bar_config(disable=True)
            # Engages only when a latent side exceeds the VAE's tile size: large (4K-path) decodes stay
            # bounded, native-size frames are untouched.
            pipe.vae.enable_tiling()
            self._pipelines[key] = pipe
            return pipe

    def _from_pretrained(self, cls: Any, path: Path, device: str, **kwargs: Any) -> Any:
        # Half precision, channels_last, fused QKV on GPUs (acceleration.py); fp32 and eager on CPUs.
        settings = self.acceleration.on(device)
        pipe = cls.from_pretrained(path, local_files_only=True, dtype=settings.torch_dtype(), **kwargs)
        return apply_acceleration(pipe.to(device), settings)


def _list_files(path: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for fname in files:
            full = Path(root) / fname
            rel = full.relative_to(path).as_posix()
            # Skip the hash cache and its temp files (another process may be writing one right now).
            if not (rel == HASH_CACHE_NAME or rel.startswith(HASH_CACHE_NAME + ".")):
                out.append((rel, full))
    out.sort(key=lambda item: item[0])
    return out


def _hash_files(files: list[tuple[str, Path]]) -> str:
    # Each file is framed as path NUL size NUL bytes, so no two different trees can hash the same stream.
    h = hashlib.sha256()
    for rel, full in files:
        with open(full, "rb") as f:
            h.update(rel.encode("utf-8") + b"\0")
            h.update(str(os.fstat(f.fileno()).st_size).encode("ascii") + b"\0")
            while block := f.read(_HASH_BLOCK):
                h.update(block)
    return h.hexdigest()


def model_hash(path: Path) -> str:
    """sha256 (hex) of a model folder: every file's relative path, size and bytes, in path order.

    The result is cached in ``path/.genfx_hash.json`` keyed on each file's (path, size, mtime_ns), so a
    multi-GB model is read once; a read-only folder is simply hashed every time.
    """
    path = Path(path)
    files = _list_files(path)
    key = [[rel, st.st_size, st.st_mtime_ns] for rel, st in ((rel, full.stat()) for rel, full in files)]
    cache_file = path / HASH_CACHE_NAME
    try:
        cached = _read_json(cache_file)
        if cached.get("version") == _HASH_CACHE_VERSION and cached.get("files") == key:
            return str(cached["hash"])
    except (OSError, ValueError, KeyError):
        pass  # missing or unreadable cache: recompute
    digest = _hash_files(files)
    try:
        fd, tmp = tempfile.mkstemp(prefix=HASH_CACHE_NAME + ".", dir=path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": _HASH_CACHE_VERSION, "files": key, "hash": digest}, f)
            os.replace(tmp, cache_file)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # read-only model folder: no cache
    return digest


def load_model_config(path: Path) -> dict[str, Path]:
    """Read ``{"models": {"name": "dir", ...}}``; relative dirs resolve against the file's folder."""
    path = Path(path)
    try:
        data = _read_json(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model config {path}: cannot read JSON object: {exc}") from exc
    models = data.get("models")
    if not isinstance(models, dict):
        raise ValueError(f'model config {path}: expected {{"models": {{"name": "path", ...}}}}')
    out: dict[str, Path] = {}
    for name, raw in models.items():
        if not isinstance(name, str) or not name or not isinstance(raw, str) or not raw:
            raise ValueError(f"model config {path}: model {name!r} must map a name to a folder path string")
        out[name] = path.parent / Path(raw).expanduser()
    return out
