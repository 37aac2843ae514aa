"""Checkpoints: architecture config + state dict + metrics + versions, loadable with weights_only=True."""
from __future__ import annotations

from pathlib import Path

import torch

from .atomic import atomic_write
from .config import ModelConfig

FORMAT = "e2micro-checkpoint"
VERSION = 1
# e2cnn caches expanded filters as buffers in eval mode; they are derived, so never stored.
_DERIVED = (".filter", ".expanded_bias")


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, foreign or inconsistent."""


def versions() -> dict:
    import e2cnn
    import numpy

    from . import __version__

    return {"e2micro": __version__, "torch": str(torch.__version__), "e2cnn": str(getattr(e2cnn, "__version__", "?")),
            "numpy": str(numpy.__version__)}


def model_state(model: torch.nn.Module) -> dict:
    model = getattr(model, "module", model)  # unwrap DDP
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items() if not k.endswith(_DERIVED)}


def atomic_save(obj, path: str | Path) -> None:
    """torch.save through a temp file renamed over `path` (see `atomic.py`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(obj, f))


def load_weights(model: torch.nn.Module, state_dict: dict) -> None:
    """Strict load of stored weights; derived e2cnn filter caches are dropped first and rebuilt on eval()."""
    model.train()  # e2cnn deletes its cached filters in train mode
    model.load_state_dict(state_dict, strict=True)


def save_checkpoint(path, model, config: ModelConfig, metrics: dict | None = None, **extra) -> None:
    atomic_save({"format": FORMAT, "version": VERSION, "config": config.to_dict(), "state_dict": model_state(model),
                 "metrics": metrics or {}, "versions": versions(), **extra}, path)


def read_checkpoint(path: str | Path) -> dict:
    """Load and validate the dict (weights_only=True: no code from the file is run)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable e2micro checkpoint ({_reason(e)})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an e2micro checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path}: checkpoint has no {key}")
    return ckpt


def _reason(e: Exception) -> str:
    text = str(e)
    # torch's weights_only refusal hides the cause after "WeightsUnpickler error:", and its first
    # line suggests weights_only=False, which is exactly what must not be done with unknown files.
    if "WeightsUnpickler error:" in text:
        text = "refused by the weights-only unpickler: " + text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:2])[:200] if lines else type(e).__name__


def load_model(path: str | Path):
    """(model in eval mode, config, checkpoint dict). Non-finite weights are refused."""
    from .model import model_from_config

    ckpt = read_checkpoint(path)
    try:
        config = ModelConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: bad architecture config ({e})") from None
    model = model_from_config(config)
    try:
        load_weights(model, ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored architecture "
                              f"({str(e).splitlines()[0][:160]})") from None
    for name, t in ckpt["state_dict"].items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: weight '{name}' contains NaN or Inf")
    return model.eval(), config, ckpt
