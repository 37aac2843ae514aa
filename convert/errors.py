"""The conversion's error type, defined with the project's other error types (`e2micro.errors`)."""
from e2micro.errors import ConversionError

__all__ = ["ConversionError"]
