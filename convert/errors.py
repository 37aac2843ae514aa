"""The conversion's own error type: a stage failed or produced something it must not."""


class ConversionError(RuntimeError):
    pass
