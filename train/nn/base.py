"""Base class for this project's equivariant modules: a self-check and an export."""
from __future__ import annotations

from e2cnn.nn import EquivariantModule

from ..groups import Group
from .equivariance import check_module


class CheckedModule(EquivariantModule):
    """An e2cnn EquivariantModule that knows its group, checks itself and exports itself."""

    group: Group

    def check_equivariance(self, size: int = 23, elements=None) -> dict:
        """{group element: relative error}; grid symmetries should be ~1e-7."""
        return check_module(self, self.group, size, elements)

    def evaluate_output_shape(self, input_shape):
        raise NotImplementedError

    def export(self):
        raise NotImplementedError
