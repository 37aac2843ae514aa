"""Architecture config: everything needed to rebuild a model, stored in every checkpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from e2micro.errors import BadInput

from .groups import parse_group

# Approximate per-channel statistics of PCam's RGB pixels (0..255). They only centre the input;
# batch norm after the stem absorbs any mismatch, and the int8 model folds them into the stem.
PCAM_MEAN = (178.7, 137.3, 176.4)
PCAM_STD = (59.9, 70.7, 54.3)
DEFAULT_INPUT_SIZE = 95  # PCam's 96×96 cropped to an odd grid
MAX_MIN_FIELDS = 8


def check_min_fields(value, option: str = "min_fields") -> None:
    """The one rule for a field floor (ModelConfig's key, train fit's --min-fields)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MIN_FIELDS:
        raise BadInput(f"{option} {value!r}: give a whole number from 1 to {MAX_MIN_FIELDS}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    group: str | None = "C12"
    width: float = 1.0
    num_classes: int = 2
    input_size: int = DEFAULT_INPUT_SIZE
    mean: tuple[float, ...] = PCAM_MEAN
    std: tuple[float, ...] = PCAM_STD
    class_names: tuple[str, ...] = field(default=())
    # MobileNetV2's ReLU6, or ReLU, which commutes with scaling: cross-layer equalization is then
    # exact at conversion (ReLU6 has to be replaced there, which changes the function).
    activation: str = "relu6"
    # Regular fields every stage has at least (equivariant models only). 1 is MobileNetV2's rounding:
    # at small widths the early stages are then one field, a few distinct filters (README). Absent
    # from checkpoints written before it existed, which were all built with 1.
    min_fields: int = 1

    def __post_init__(self):
        g = parse_group(self.group)
        object.__setattr__(self, "group", g.name if g else None)
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        if not self.class_names:
            names = ("normal", "tumour") if self.num_classes == 2 else tuple(f"class_{i}" for i in range(self.num_classes))
            object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        if not (0 < float(self.width) <= 4):
            raise BadInput(f"width must be in (0, 4], got {self.width}")
        if int(self.num_classes) < 2:
            raise BadInput(f"num_classes must be at least 2, got {self.num_classes}")
        if len(self.class_names) != self.num_classes:
            raise BadInput(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise BadInput("mean and std need 3 values each, std positive")
        if self.activation not in ("relu6", "relu"):
            raise BadInput(f"activation must be relu6 or relu, got {self.activation!r}")
        check_min_fields(self.min_fields)
        if g is None and self.min_fields != 1:
            raise BadInput("min_fields applies to equivariant models (regular fields); the conventional twin has none")
        if int(self.input_size) % 2 == 0:
            raise BadInput(
                f"input size {self.input_size} is even: the model needs odd grids so that rotations "
                "about the centre map pixels onto pixels (PCam's 96×96 is cropped to 95×95)"
            )

    @property
    def group_spec(self):
        return parse_group(self.group)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"], d["class_names"] = list(self.mean), list(self.std), list(self.class_names)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise BadInput(f"unknown config keys {unknown}")
        return cls(**known)
