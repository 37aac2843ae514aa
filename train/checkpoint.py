"""Checkpoints: architecture config + state dict + metrics + versions, loadable with weights_only=True."""
from __future__ import annotations

import io
import re
from pathlib import Path

import torch

from e2micro.atomic import write_atomic
from e2micro.errors import BadInput, WriteError
from .config import ModelConfig

FORMAT = "e2micro-checkpoint"
VERSION = 1
# e2cnn caches expanded filters as buffers in eval mode; they are derived, so never stored.
_DERIVED = (".filter", ".expanded_bias")


class CheckpointError(BadInput):
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
    """torch.save, published atomically (`e2micro.atomic`). Serialised in memory first: torch's
    own writer reports a full disk as "[enforce fail at inline_container.cc]", the OS names the file."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save(obj, buf)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from None
    write_atomic(path, buf.getvalue())


def safe_load(path: Path, what: str):
    """torch.load(weights_only=True) with one clear line for every bad file (nothing in it runs)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable {what} ({_reason(e)})") from None


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
    if path.is_dir():
        raise CheckpointError(f"{path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    ckpt = safe_load(path, "e2micro checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an e2micro checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported (expected {VERSION})")
    for key in ("config", "state_dict"):
        if not isinstance(ckpt.get(key), dict):
            raise CheckpointError(f"{path}: checkpoint has no {key}")
    return ckpt


def _reason(e: Exception) -> str:
    """Why torch.load refused a file, without torch's advice to retry with weights_only=False
    (which would run whatever code the file holds)."""
    text = str(e)
    if m := re.search(r"GLOBAL ([\w.]+)", text):
        return (f"it holds code, a reference to {m.group(1)}, which a checkpoint never does; "
                "refused, nothing from it was run")
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        detail = text.split("WeightsUnpickler error:", 1)[-1].strip().splitlines()
        return f"it is not plain tensor data ({detail[0].strip() if detail else 'refused'}); nothing from it was run"
    if "central directory" in text or "zip archive" in text or isinstance(e, (OSError, EOFError)):
        first = text.strip().split(". ")[0].splitlines()[0][:120] if text.strip() else type(e).__name__
        return f"truncated or corrupt: {first}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:160] if lines else type(e).__name__


def _mismatch(model: torch.nn.Module, stored: dict) -> str:
    """The first differences between stored weights and the architecture's."""
    want = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith(_DERIVED)}
    have = {k: tuple(v.shape) for k, v in stored.items() if hasattr(v, "shape")}
    diffs = [f"'{k}' is {list(have[k])} in the file, {list(want[k])} in the model"
             for k in want if k in have and have[k] != want[k]]
    diffs += [f"'{k}' missing from the file" for k in want if k not in have]
    diffs += [f"unexpected '{k}'" for k in have if k not in want]
    more = f"; {len(diffs) - 2} more" if len(diffs) > 2 else ""
    return "; ".join(diffs[:2]) + more if diffs else "incompatible weights"


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
    except RuntimeError:
        floor = f", min_fields {config.min_fields}" if config.min_fields != 1 else ""
        raise CheckpointError(f"{path}: weights do not match the stored architecture ({config.group or 'none'}, "
                              f"width {config.width}{floor}): {_mismatch(model, ckpt['state_dict'])}") from None
    for name, t in ckpt["state_dict"].items():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{path}: weight '{name}' contains NaN or Inf")
    return model.eval(), config, ckpt
