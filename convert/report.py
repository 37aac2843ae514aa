"""report.json (machines) and report.md (people): the same facts, written deterministically."""
from __future__ import annotations

import json
import os
from pathlib import Path

from .plots import MEMORY, RANGES, render_plots


def _steps(dfq: dict) -> str:
    skipped = dfq.get("skipped", {})
    return ", ".join(f"{s} (skipped: {skipped[s]})" if s in skipped else s for s in dfq["steps"])


def summary_lines(r: dict) -> list[str]:
    p, f = r["parity"], r["files"]
    lines = [
        f"model: {r['checkpoint']['group']} MobileNetV2, width {r['checkpoint']['width']}"
        + (f" (at least {r['checkpoint']['min_fields']} fields per stage)"
           if r["checkpoint"].get("min_fields", 1) != 1 else "") + ", "
        f"{r['checkpoint']['num_classes']} classes",
        f"int8 .tflite: {f['model_int8.tflite']:,} bytes; float: {f['model_float.tflite']:,} bytes; "
        f"TFLM arena {r['arena']['measured_bytes']:,} bytes measured → kTensorArenaSize {r['arena']['tensor_arena_size']:,}",
        "ops: " + ", ".join(f"{k}×{v}" for k, v in r["ops"].items()) + f"; {r['macs']['total'] / 1e6:.1f} M MACs",
        f"input int8 scale {r['input']['scale']:g}, zero point {r['input']['zero_point']}; "
        f"ranges: {r['ranges']['method']}; DFQ: {_steps(r['dfq']) or 'none'}"
        f"{'' if r['dfq']['per_channel'] else ' (per-tensor weights)'}",
        f"parity on {p['images']} images ({p['source']}):",
        f"  float TFLite vs the exported PyTorch graph: max |Δlogit| {p['float_vs_torch_max_abs_logit']:.2e}; "
        f"DFQ moved float logits by up to {p['dfq_float_vs_torch_max_abs_logit']:.3g}",
        f"  int8 vs PyTorch: argmax agreement {p['int8_vs_torch_argmax_agreement']:.1%}, max |Δlogit| "
        f"{p['int8_vs_torch_max_abs_logit_lsb']:.1f} LSB (mean {p['int8_vs_torch_mean_abs_logit_lsb']:.2f})",
        f"  TFLM vs LiteRT reference: identical on {p['tflm_vs_litert_identical_rate']:.0%} "
        f"(max {p['tflm_vs_litert_max_lsb']} LSB)",
        f"  int8 outputs bit-identical under 90°/180°/270° rotations: LiteRT {p['rot90_bitexact_rate_litert']:.1%}, "
        f"TFLM {p['rot90_bitexact_rate_tflm']:.1%}",
    ]
    if "accuracy_int8" in p:
        lines.append(f"  accuracy: PyTorch {p['accuracy_torch']:.1%}, float TFLite {p['accuracy_float_tflite']:.1%}, "
                     f"int8 {p['accuracy_int8']:.1%}")
    return lines


def _layers(r: dict) -> str:
    rows, arena = r["layers"]["rows"], r["arena"]
    peak = max(rows, key=lambda row: row["arena_in_use_bytes"])
    table = "\n".join(
        f"| {row['index']} | `{row['op']}` | {'×'.join(map(str, row['output_shape']))} | {row['macs']:,} | "
        f"{row['weight_bytes']:,} | {row['activation_bytes']:,} | {row['arena_in_use_bytes']:,} | "
        f"{row['largest_live_tensor']['bytes']:,} (#{row['largest_live_tensor']['tensor']}) |" for row in rows)
    return (f"## Layers\n\n{r['layers']['method']}\n\n"
            f"- {len(rows)} ops, {sum(row['macs'] for row in rows):,} MACs, "
            f"{sum(row['weight_bytes'] for row in rows):,} bytes of constants\n"
            f"- peak arena in use {peak['arena_in_use_bytes']:,} bytes at op #{peak['index']} {peak['op']}; "
            f"TFLM measured {arena['measured_bytes']:,} (planned tensors plus its persistent structures "
            f"and scratch buffers)\n\n"
            "| # | op | output | MACs | weight bytes | activation bytes | arena in use | largest live tensor |\n"
            f"|---|---|---|---|---|---|---|---|\n{table}\n\n"
            f"![arena in use over the op sequence]({MEMORY})\n\n"
            f"![int8 ranges against the values they hold]({RANGES})\n\n")


def _conversion(r: dict) -> str:
    rows = "\n".join(f"| `{q['key']}` | {q['min']:.5g} | {q['max']:.5g} | {q['scale']:.6g} | {q['zero_point']} | "
                     f"`{q['tflite_name'][:48]}` |" for q in r["quantization"])
    files = "\n".join(f"| `{k}` | {v:,} |" for k, v in r["files"].items())
    return (f"# Conversion report: `{r['checkpoint']['file']}`\n\n"
            + "\n".join(f"- {ln}" if not ln.startswith("  ") else f"  - {ln.strip()}" for ln in summary_lines(r))
            + f"\n\n## Files\n\n| file | bytes |\n|---|---|\n{files}\n\n"
            + _layers(r)
            + f"## Activation ranges → int8 parameters ({r['ranges']['method']})\n\n"
            f"{json.dumps(r['ranges']['notes'], sort_keys=True)}\n\n"
            "| activation | min | max | scale | zero point | TFLite tensor |\n|---|---|---|---|---|---|\n"
            f"{rows}\n\n" + _firmware(r.get("firmware"))
            + "## Versions\n\n" + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + "\n")


def _firmware(f: dict | None) -> str:
    """`convert measure`'s section: the TFLM firmware on QEMU."""
    if not f:
        return ""
    rows = "\n".join(f"| {b['board']} | {b['cpu']} | {b['instructions'] / 1e6:.2f} M | {b['instructions_per_mac']} | "
                     f"{b['arena_used']:,} of {b['tensor_arena_size']:,} | {b['flash']:,} | {b['ram']:,} |"
                     for b in f["boards"])
    from .qemu_measure import KERNELS

    return (f"## Firmware on QEMU ({KERNELS[f.get('kernels', 'cmsis_nn')]}, `convert measure`)\n\nInstructions per inference are {f['note']}; "
            f"{f['macs'] / 1e6:.1f} M MACs.\n\n| board | CPU | instructions | per MAC | arena in use (B) | flash (B) | "
            f"RAM (B) |\n|---|---|---|---|---|---|---|\n{rows}\n\n")


def _edgetpu(entry: dict) -> str:
    per_op: dict[str, list[int]] = {}
    for r in entry["rows"]:
        per_op.setdefault(r["op"], [0, 0])[0 if r["maps"] else 1] += 1
    rows = "\n".join(f"| `{op}` | {ok} | {bad} |" for op, (ok, bad) in sorted(per_op.items()))
    c = entry.get("compiler", {})
    compiler = ("not run (the model does not map)" if not c else
                f"`{c['command']}` — not found here, run it where it is installed" if c.get("found") is False else
                c.get("note") or (f"failed: {c['error']}" if c.get("ok") is False else
                                  f"version {c.get('version', '?')}: `{c.get('file')}`, log `{c.get('log')}`"))
    return (f"## Edge TPU\n\n- {entry['summary']} (requirements: {entry['requirements']})\n- compiler: {compiler}\n\n"
            f"| op | maps | does not map |\n|---|---|---|\n{rows}\n")


def render(r: dict) -> str:
    """report.md from report.json's contents, nothing else: the conversion (when `convert tflite`
    wrote the folder) and the Edge TPU verdict (when `convert edgetpu` added one)."""
    parts = [_conversion(r)] if "checkpoint" in r else [f"# Edge TPU check: `{r['edgetpu']['model']}`\n"]
    if "edgetpu" in r:
        parts.append(_edgetpu(r["edgetpu"]))
    return "\n".join(parts)


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def write_report(out: Path, report: dict) -> None:
    """Into the staging folder `out` (published as a whole later): the plots, then report.json with
    every file's size, then report.md, all drawn from the JSON text, exactly as `render` reads it."""
    for name, png in render_plots(json.loads(dumps(report))).items():
        (out / name).write_bytes(png)
    report["files"] = {name: (out / name).stat().st_size for name in sorted(os.listdir(out))}
    text = dumps(report)
    (out / "report.json").write_text(text)
    (out / "report.md").write_text(render(json.loads(text)))
