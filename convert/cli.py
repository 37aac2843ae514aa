"""`convert`: turn a trained checkpoint into what a device runs."""
from __future__ import annotations

from pathlib import Path

import typer

from e2micro.cli_errors import cli_errors, debug_option

app = typer.Typer(help="Convert e2micro checkpoints for microcontrollers and Edge TPUs.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)  # plain usage errors: a line, not a box


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", callback=debug_option, is_eager=True,
                                     help="Show the full traceback of any error.")):
    """Convert e2micro checkpoints for microcontrollers and Edge TPUs."""


@app.command("tflite")
def tflite(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `train fit`."),
    out: Path = typer.Option(None, "--out", help="Output directory (default: <checkpoint>_tflite next to it)."),
    ranges: str = typer.Option("bn", help="Where int8 activation ranges come from: bn (batch-norm statistics "
                                          "and a probe of 8 distilled images, no real image), distilled (min/max "
                                          "over images distilled from them), data (real images)."),
    bn_k: float = typer.Option(None, "--bn-k", help="bn ranges: ReLU/ReLU6 outputs mean ± k·std, and the k of "
                                                    "the pooled mean's and logits' bound (default: "
                                                    "calibration/bn_ranges.py's K); every range still covers "
                                                    "what the probe images reached."),
    equalize: bool = typer.Option(True, "--equalize/--no-equalize", help="Cross-layer equalization."),
    absorb: bool = typer.Option(True, "--absorb/--no-absorb", help="High-bias absorption."),
    bias_correction: bool = typer.Option(True, "--bias-correction/--no-bias-correction",
                                         help="Analytic bias correction."),
    relu6: str = typer.Option("keep", help="keep: ReLU6 stays and equalization/absorption skip the layers it "
                                           "ends; relu: replace it by ReLU there (DFQ paper; changes the function); "
                                           "bounded: ReLU6 stays, fields whose batch-norm bound stays below 6 are "
                                           "rescaled anyway."),
    per_channel: bool = typer.Option(True, "--per-channel/--per-tensor", help="int8 weight scales."),
    distill_steps: int = typer.Option(100, "--distill-steps", min=1, help="distilled ranges: optimisation steps."),
    calibration_data: Path = typer.Option(None, "--calibration-data",
                                          help="PCam-format *_x.h5 (or directory, valid split) for --ranges data."),
    calibration_images: int = typer.Option(256, "--calibration-images", min=1),
    parity_data: Path = typer.Option(None, "--parity-data",
                                     help="PCam-format *_x.h5 or directory for the parity figures "
                                          "(default: the checkpoint's test split, else demo patches)."),
    parity_images: int = typer.Option(16, "--parity-images", min=1),
    firmware: Path = typer.Option(None, "--firmware", help="Also copy the generated C sources into this "
                                                             "firmware folder (e.g. firmware/cortex-m)."),
    force: bool = typer.Option(False, "--force", help="Write into an --out folder that holds other files too "
                                                      "(only convert's own files are replaced, nothing removed)."),
    quiet: bool = typer.Option(False, "--quiet", help="Print the summary only."),
):
    """Checkpoint → ONNX → TensorFlow → float and fully-int8 TFLite → C sources for TFLM, with a report."""
    with cli_errors("nothing published"):
        from calibration.dfq import DFQOptions
        from e2micro.errors import BadInput

        from .pipeline import ConvertOptions, convert_tflite
        from .report import summary_lines

        try:
            dfq = DFQOptions(relu6=relu6, equalize=equalize, absorb=absorb, bias_correction=bias_correction,
                             per_channel=per_channel)
        except ValueError as e:  # an option value
            raise BadInput(str(e)) from None
        opts = ConvertOptions(checkpoint=checkpoint, out=out, ranges=ranges, calibration_data=calibration_data,
                              calibration_images=calibration_images, parity_data=parity_data,
                              parity_images=parity_images, firmware=firmware, dfq=dfq, bn_k=bn_k,
                              distill_steps=distill_steps, force=force)
        report = convert_tflite(opts, echo=(lambda s: None) if quiet else typer.echo)
    typer.echo(f"wrote {opts.out_dir()}")
    for line in summary_lines(report):
        typer.echo(line)


from .edgetpu.command import register as _register_edgetpu  # noqa: E402

_register_edgetpu(app)

from .engine.command import register as _register_engine  # noqa: E402

_register_engine(app)


def main() -> None:
    app()

from .qemu_measure import register as _register_measure  # noqa: E402

_register_measure(app)
