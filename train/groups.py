"""Symmetry groups the model can be built for, and their e2cnn spaces."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from e2micro.errors import BadInput


_PATTERN = re.compile(r"^([CD])(\d+)$")
# A 3×3 filter resolves few directions: past N = 16 a larger group only multiplies the channels
# per field (and the build time: C400 takes minutes) without adding resolvable rotations.
MAX_N = 16


@dataclass(frozen=True)
class Group:
    """A rotation group C_N or a dihedral group D_N (rotations and reflections)."""

    kind: str  # "C" or "D"
    n: int

    @property
    def name(self) -> str:
        return f"{self.kind}{self.n}"

    @property
    def order(self) -> int:
        """Channels of one regular field: |G|."""
        return self.n if self.kind == "C" else 2 * self.n

    def gspace(self):
        from e2cnn import gspaces

        if self.kind == "C":
            return gspaces.Rot2dOnR2(self.n)
        return gspaces.FlipRot2dOnR2(self.n)


def parse_group(name: str | None) -> Group | None:
    """'C12' → Group('C', 12); None / 'none' → None (the conventional twin).

    N must be a multiple of 4 so that the 90° rotations of the pixel grid belong to the
    group: that is what makes int8 outputs bit-exactly invariant on the device.
    """
    if name is None or str(name).strip().lower() in ("", "none", "conventional"):
        return None
    m = _PATTERN.match(str(name).strip().upper())
    if not m:
        raise BadInput(f"unknown group {name!r}: use C4, C8, C12, D4, D8 (C_N or D_N with N a multiple of 4) or none")
    kind, n = m.group(1), int(m.group(2))
    if n <= 0 or n % 4:
        raise BadInput(f"group {name!r}: N must be a positive multiple of 4 so that 90° rotations are in the group")
    if n > MAX_N:
        raise BadInput(f"group {name!r}: N must be at most {MAX_N} (a 3×3 filter cannot resolve more rotations; "
                         "larger groups only multiply the channels and the build time)")
    return Group(kind, n)


def element_angle(group: Group, element) -> tuple[int, float]:
    """(flip, rotation angle in radians) of an e2cnn group element of `group`."""
    if group.kind == "C":
        return 0, 2 * math.pi * int(element) / group.n
    flip, k = element
    return int(flip), 2 * math.pi * int(k) / group.n


def is_grid_symmetry(group: Group, element) -> bool:
    """True for the 8 elements that map the square pixel grid onto itself exactly."""
    _, angle = element_angle(group, element)
    quarter = angle / (math.pi / 2)
    return abs(quarter - round(quarter)) < 1e-9
