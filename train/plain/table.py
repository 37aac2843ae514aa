"""MobileNetV2's architecture table, adapted to PCam, decoded into per-layer channel counts."""
from __future__ import annotations

from dataclasses import dataclass

# Sandler et al. 2018, Table 2: expansion t, output channels c, repeats n, first stride s.
# Two strides are reduced to 1 for PCam's small patches (as in Mohamed et al.), which keeps
# 95 → 47 → 23 → 11: every grid odd, so rotations about the centre map pixels onto pixels.
MOBILENETV2 = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 1),  # 2 in MobileNetV2
    (6, 96, 3, 1),
    (6, 160, 3, 1),  # 2 in MobileNetV2
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
KERNEL = 3  # stem and depthwise kernels; everything else is 1×1


def make_divisible(v: float, divisor: int) -> int:
    """Round to a multiple of `divisor`, never more than 10 % below `v` (MobileNetV2's rule)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def conv_out(size: int, stride: int) -> int:
    """Grid after a 3×3 conv: stride 1 pads by 1, stride 2 pads by 0 (symmetric sampling on odd grids)."""
    return size if stride == 1 else (size - KERNEL) // stride + 1


@dataclass(frozen=True)
class BlockSpec:
    cin: int
    hidden: int
    cout: int
    stride: int
    in_size: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.cin == self.cout

    @property
    def out_size(self) -> int:
        return conv_out(self.in_size, self.stride)


@dataclass(frozen=True)
class ArchSpec:
    stem: int
    stem_size: int
    blocks: tuple[BlockSpec, ...]
    head: int

    @property
    def final_size(self) -> int:
        return self.blocks[-1].out_size


def decode(width: float, divisor: int, input_size: int, min_fields: int = 1) -> ArchSpec:
    """Channel counts (multiples of `divisor`, i.e. whole regular fields, at least `min_fields` of
    them in every stage) and grid sizes."""
    def channels(v: float) -> int:
        return max(min_fields * divisor, make_divisible(v, divisor))

    stem = channels(STEM_CHANNELS * width)
    size = conv_out(input_size, 2)
    _check_odd(input_size, size, "the stem")
    stem_size, cin, blocks = size, stem, []
    for t, c, n, s in MOBILENETV2:
        cout = channels(c * width)
        for i in range(n):
            stride = s if i == 0 else 1
            out = conv_out(size, stride)
            _check_odd(input_size, out, f"block {len(blocks)}")
            blocks.append(BlockSpec(cin, cin * t, cout, stride, size))
            cin, size = cout, out
    head = channels(HEAD_CHANNELS * max(1.0, width))
    return ArchSpec(stem, stem_size, tuple(blocks), head)


def _check_odd(input_size: int, size: int, where: str) -> None:
    if size < 1 or size % 2 == 0:
        raise ValueError(
            f"input size {input_size} gives a {size}×{size} grid after {where}; every grid must be odd "
            "(sizes with side + 1 a multiple of 16 work: 95 for PCam, 63, 127, …)"
        )


def single_field_stages(width: float, order: int, input_size: int, min_fields: int = 1) -> list[tuple[str, int]]:
    """(stage, channels) of the stages whose output is one regular field of `order` channels: the
    stem, MobileNetV2's table rows ("stage 1" … "stage 7") and the head conv. Weight sharing leaves
    such a stage few distinct filters (C12 at width 0.35: the stem and stages 1–3, unless
    `min_fields` ≥ 2)."""
    arch = decode(width, order, input_size, min_fields)
    stages, first = [("stem", arch.stem)], 0
    for k, (_, _, n, _) in enumerate(MOBILENETV2, 1):
        stages.append((f"stage {k}", arch.blocks[first].cout))
        first += n
    stages.append(("head", arch.head))
    return [(name, c) for name, c in stages if c == order]
