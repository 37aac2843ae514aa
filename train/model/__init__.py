"""`build_model`: the equivariant MobileNetV2, or its conventional twin with `group=None`."""
from __future__ import annotations

from ..config import ModelConfig
from ..plain import PlainMobileNetV2, build_plain


def build_model(group: str | None = "C12", width: float = 1.0, num_classes: int = 2, **kwargs):
    return model_from_config(ModelConfig(group=group, width=width, num_classes=num_classes, **kwargs))


def model_from_config(config: ModelConfig):
    if config.group_spec is None:
        return build_plain(config)
    from .equivariant import EquivariantMobileNetV2

    return EquivariantMobileNetV2(config)


__all__ = ["build_model", "model_from_config", "ModelConfig", "PlainMobileNetV2"]
