"""e2micro training: the equivariant MobileNetV2, PCam data and the `train` command."""

__version__ = "0.1.0"
