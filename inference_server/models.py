"""Model registry: named local diffusers model folders plus the built-in tiny model, the sim-pass
ControlNet configured for a model, and the LoRAs the server applies per job (adapters.py checks their
folders and model cards).

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
from .acceleration import Acceleration, apply_to_module
from .acceleration import apply as apply_acceleration
from .adapters import AdapterError, CardFacts, LoraSpec, check_lora, check_sim_controlnet
from .engine import modes
from .engine.mode import ModelFacts
from .tiny_model import VARIANTS_FILE, ensure_tiny_model

TINY_NAME = "tiny"
HASH_CACHE_NAME = ".genfx_hash.json"
_HASH_BLOCK = 1 << 20
_HASH_CACHE_VERSION = 1


@dataclass(frozen=True)
class ControlNetInfo:
    """A sim-pass ControlNet: its folder, hash and model card facts."""

    path: Path
    hash: str
    base_model_hash: str
    dataset_hash: str


@dataclass(frozen=True)
class LoraInfo:
    """A LoRA the server serves; ``models``: the configured models it applies to (same base hash)."""

    name: str
    path: Path
    hash: str
    base_model_hash: str
    dataset_hash: str
    models: tuple[str, ...]


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
    sim_controlnet: ControlNetInfo | None = None
    # Modes that run the model's own UNet (no companion folder): where LoRAs apply.
    lora_modes: tuple[str, ...] = ()


class UnknownLoraError(KeyError):
    """A LoRA name the registry doesn't know; the message lists the known names."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.known = known

    def __str__(self) -> str:
        return f"unknown LoRA {self.name!r}; this server has: {', '.join(self.known) or 'no LoRAs'}"


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


def _runs_main_unet(mode: str, variants: Mapping[str, Path]) -> bool:
    spec = modes.get(mode).pipeline
    return spec is not None and not (spec.variant and spec.variant in variants)


def _native_size(unet_cfg: Mapping[str, Any], vae_cfg: Mapping[str, Any]) -> tuple[int, int]:
    scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    sample = unet_cfg["sample_size"]
    # sample_size is an int, or (height, width) for non-square models.
    h, w = (sample, sample) if isinstance(sample, int) else (int(sample[0]), int(sample[1]))
    return w * scale, h * scale


class ModelRegistry:
    """Named models: the configured local folders, plus the built-in "tiny" model (built lazily); the
    sim ControlNet of a model (``sim_controlnets``: model name -> folder) and the LoRAs (``loras``).

    Adapter folders and their model cards are checked here (ValueError naming them); ``check_adapters``
    also compares each sim ControlNet's base model hash with its model's (hashing those models).
    ``acceleration``: how pipelines run on CUDA devices (acceleration.py)."""

    def __init__(
        self,
        models: Mapping[str, Path],
        cache_dir: Path,
        include_tiny: bool = True,
        *,
        sim_controlnets: Mapping[str, Path] | None = None,
        loras: Mapping[str, LoraSpec] | None = None,
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
        self._controlnets: dict[str, tuple[Path, CardFacts]] = {}
        for model, folder in (sim_controlnets or {}).items():
            if model not in self._paths:
                raise ValueError(f"sim ControlNet {folder}: for model {model!r}, which is not configured")
            self._controlnets[model] = (Path(folder).expanduser(), check_sim_controlnet(model, Path(folder)))
        self._lora_specs: dict[str, tuple[LoraSpec, CardFacts]] = {}
        for name, spec in (loras or {}).items():
            if spec.base_model and spec.base_model not in self.names():
                known = ", ".join(self.names())
                raise ValueError(
                    f"LoRA {name!r}: base_model {spec.base_model!r} is not a model here ({known})"
                )
            self._lora_specs[name] = (spec, check_lora(name, spec))
        self._loras: dict[str, LoraInfo] | None = None

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
            controlnet = None
            if name in self._controlnets:
                folder, facts = self._controlnets[name]
                controlnet = ControlNetInfo(
                    folder, model_hash(folder), facts.base_model_hash, facts.dataset_hash
                )
            capabilities = modes.capabilities(
                ModelFacts(main_channels, frozenset(variants), controlnet is not None)
            )
            info = ModelInfo(
                name=name,
                family=_family(index, unet_cfg),
                path=path,
                native_width=width,
                native_height=height,
                capabilities=capabilities,
                hash=model_hash(path),
                variants=variants,
                sim_controlnet=controlnet,
                lora_modes=tuple(m for m in capabilities if _runs_main_unet(m, variants)),
            )
            self._infos[name] = info
            return info

    def check_adapters(self) -> None:
        """Each sim ControlNet was trained on its model (hashes the models that have one)."""
        for name in self._controlnets:
            info = self.info(name)
            assert info.sim_controlnet is not None
            if info.sim_controlnet.base_model_hash != info.hash:
                raise AdapterError(
                    f"model {name!r}: its sim ControlNet {info.sim_controlnet.path} was trained on base model"
                    f" {info.sim_controlnet.base_model_hash[:12]}, not on this model ({info.hash[:12]})"
                )

    def loras(self) -> list[LoraInfo]:
        """Every LoRA, in configuration order, with the models it applies to (hashes every model once)."""
        if not self._lora_specs:
            return []  # and no model needs hashing (the built-in tiny one is not built for nothing)
        with self._lock:
            if self._loras is None:
                hashes = {name: self.info(name).hash for name in self.names()}
                found: dict[str, LoraInfo] = {}
                for name, (spec, facts) in self._lora_specs.items():
                    base = hashes[spec.base_model] if spec.base_model else facts.base_model_hash
                    folder = Path(spec.path).expanduser()
                    found[name] = LoraInfo(
                        name=name,
                        path=folder,
                        hash=model_hash(folder),
                        base_model_hash=base,
                        dataset_hash=facts.dataset_hash,
                        models=tuple(m for m, h in hashes.items() if h == base),
                    )
                self._loras = found
            return list(self._loras.values())

    def lora(self, name: str) -> LoraInfo:
        found = {lora.name: lora for lora in self.loras()}
        if name not in found:
            raise UnknownLoraError(name, list(found))
        return found[name]

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
            elif spec.controlnet:
                assert info.sim_controlnet is not None  # the mode is among the capabilities
                settings = self.acceleration.on(device)
                controlnet_cls: Any = diffusers.ControlNetModel
                controlnet = controlnet_cls.from_pretrained(
                    info.sim_controlnet.path, local_files_only=True, dtype=settings.torch_dtype()
                )
                controlnet = apply_to_module(controlnet.to(device), settings)
                # The model's own modules plus the ControlNet: no second copy of the UNet.
                main = self.load(name, device, "txt2img")
                pipe = cls.from_pipe(main, controlnet=controlnet, dtype=main.dtype)
            else:
                # dtype passed on: from_pipe casts the shared modules to float32 otherwise (fp16 on GPUs).
                main = self.load(name, device, "txt2img")
                pipe = cls.from_pipe(main, dtype=main.dtype)
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


@dataclass(frozen=True)
class ModelsConfig:
    """What a models config file lists: model folders, a sim ControlNet per model, LoRAs."""

    models: dict[str, Path] = field(default_factory=dict)
    sim_controlnets: dict[str, Path] = field(default_factory=dict)
    loras: dict[str, LoraSpec] = field(default_factory=dict)


def _entry(path: Path, what: str, raw: Any, keys: tuple[str, ...]) -> dict[str, str]:
    """A config entry: "folder" or {"path": "folder", ...}; strings only."""
    entry = {"path": raw} if isinstance(raw, str) else raw
    bad = (
        not isinstance(entry, dict)
        or not isinstance(entry.get("path"), str)
        or not entry["path"]
        or any(k not in keys or not isinstance(v, str) for k, v in entry.items())
    )
    if bad:
        fields = ", ".join(f'"{k}": "..."' for k in keys)
        raise ValueError(f"model config {path}: {what} must be a folder path or {{{fields}}}, got {raw!r}")
    return dict(entry)


def load_model_config(path: Path) -> ModelsConfig:
    """Read a models config; relative folders resolve against the file's folder::

    {"models": {"sd21": "/models/sd21",
                "collapse": {"path": "models/tiny-v3", "sim_controlnet": "runs/collapse/controlnet"}},
     "loras": {"collapse": "runs/collapse/lora",
               "legacy": {"path": "loras/legacy", "base_model": "sd21"}}}
    """
    path = Path(path)
    try:
        data = _read_json(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"model config {path}: cannot read JSON object: {exc}") from exc
    models = data.get("models")
    loras = data.get("loras", {})
    if not isinstance(models, dict) or not isinstance(loras, dict):
        raise ValueError(
            f'model config {path}: expected {{"models": {{"name": "path", ...}}, "loras": {{...}}}}'
        )
    unknown = sorted(set(data) - {"models", "loras"})
    if unknown:
        raise ValueError(f"model config {path}: unknown key(s) {', '.join(unknown)} (known: models, loras)")

    def resolve(raw: str) -> Path:
        return path.parent / Path(raw).expanduser()

    out = ModelsConfig()
    for name, raw in models.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"model config {path}: model names must be non-empty strings (got {name!r})")
        entry = _entry(path, f"model {name!r}", raw, ("path", "sim_controlnet"))
        out.models[name] = resolve(entry["path"])
        if entry.get("sim_controlnet"):
            out.sim_controlnets[name] = resolve(entry["sim_controlnet"])
    for name, raw in loras.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"model config {path}: LoRA names must be non-empty strings (got {name!r})")
        entry = _entry(path, f"LoRA {name!r}", raw, ("path", "base_model"))
        out.loras[name] = LoraSpec(resolve(entry["path"]), entry.get("base_model", ""))
    return out
