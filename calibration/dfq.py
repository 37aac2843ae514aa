"""Data-free quantization, step by step, on the folded plain model.

fold (done before) → ReLU6→ReLU where rescaled → cross-layer equalization → high-bias absorption →
analytic bias correction. Each step is a small function returning a new model; `apply_dfq` runs
the enabled ones in that order and records what each did.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .absorb import absorb_high_biases
from .bias_correction import correct_bias
from .equalize import equalize, relu6_to_relu, scalable_pairs

RELU6_MODES = ("keep", "relu", "bounded")
CLIP_K = 5.0  # relu6 "bounded": a field is scaled only while β + 5γ stays below the clip at 6


@dataclass(frozen=True, kw_only=True)
class DFQOptions:
    # keep: ReLU6 stays, so equalization/absorption skip the pairs it ends (the function is kept);
    # relu: ReLU6 → ReLU where they would rescale (DFQ paper, AIMET); bounded: ReLU6 kept, fields
    # whose batch-norm bound stays below 6 are rescaled/shifted anyway (equalize.py). Figures:
    # bench/results/quantization.md.
    relu6: str = "keep"
    equalize: bool = True
    absorb: bool = True
    bias_correction: bool = True
    per_channel: bool = True  # int8 weights per output channel (else per tensor)
    absorb_k: float = 3.0

    def __post_init__(self):
        if self.relu6 not in RELU6_MODES:
            raise ValueError(f"relu6 must be one of {RELU6_MODES}, got {self.relu6!r}")

    def steps(self) -> list[str]:
        return [s for s, on in (("relu6_to_relu", self.relu6 == "relu" and (self.equalize or self.absorb)),
                                ("equalize", self.equalize), ("absorb_high_biases", self.absorb),
                                ("correct_bias", self.bias_correction)) if on]

    def to_dict(self) -> dict:
        return {**asdict(self), "steps": self.steps()}


def skipped_steps(model, opts: DFQOptions) -> dict[str, str]:
    """{step: why} for enabled steps that have nothing to act on (ReLU6 kept: no layer pairs)."""
    m = relu6_to_relu(model) if opts.relu6 == "relu" else model
    clip_k = CLIP_K if opts.relu6 == "bounded" else None
    none = not any(scalable_pairs(m, clip_k))
    for u in m.conv_units():
        u.__dict__.pop("eligible", None)
    return {s: "no pairs" for s in ("equalize", "absorb_high_biases") if none and s in opts.steps()}


def apply_dfq(model, opts: DFQOptions):
    """(transformed model, [(step name, model after the step)]) for the enabled steps."""
    clip_k = CLIP_K if opts.relu6 == "bounded" else None
    fns = {"relu6_to_relu": relu6_to_relu, "equalize": lambda m: equalize(m, clip_k=clip_k),
           "absorb_high_biases": lambda m: absorb_high_biases(m, opts.absorb_k, clip_k),
           "correct_bias": lambda m: correct_bias(m, opts.per_channel)}
    history = []
    for step in opts.steps():
        model = fns[step](model)
        history.append((step, model))
    return model, history
