"""The report's two plots, drawn from report.json alone (so they are a function of it, like
report.md): memory over the layer sequence, and int8 ranges against the values they must hold.

Matplotlib's object API on the Agg canvas (no pyplot, no global backend); PNG metadata without the
"Software" version stamp, so that the same checkpoint gives byte-identical files.
"""
from __future__ import annotations

import io

MEMORY, RANGES = "report_memory.png", "report_ranges.png"
PLOTS = (MEMORY, RANGES)
DPI = 80


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def memory_png(r: dict) -> bytes:
    from matplotlib.figure import Figure

    rows = r["layers"]["rows"]
    x = [row["index"] for row in rows]
    used = [row["arena_in_use_bytes"] / 1024 for row in rows]
    big = [row["largest_live_tensor"]["bytes"] / 1024 for row in rows]
    fig = Figure(figsize=(11, 4.2))
    ax = fig.add_subplot()
    ax.bar(x, used, width=0.85, color="#9ecae1", label="tensors live at the op (planned arena in use)")
    ax.bar(x, big, width=0.85, color="#3182bd", label="largest live tensor")
    for y, style, what in ((r["arena"]["measured_bytes"], "--", "measured arena (TFLM)"),
                           (r["arena"]["tensor_arena_size"], ":", "kTensorArenaSize")):
        ax.axhline(y / 1024, color="#d62728", linestyle=style, linewidth=1, label=f"{what} {y / 1024:,.0f} KiB")
    ax.set_xticks(x, [row["op"].replace("DEPTHWISE_CONV_2D", "DW").replace("CONV_2D", "CONV")
                      .replace("FULLY_CONNECTED", "FC") for row in rows], rotation=90, fontsize=6)
    ax.set_xlim(-1, len(x))
    ax.set_ylabel("KiB")
    ax.set_title(f"{r['checkpoint']['file']}: arena in use over the op sequence")
    ax.legend(fontsize=7, loc="upper left")
    fig.subplots_adjust(left=0.06, right=0.99, top=0.92, bottom=0.14)
    return _png(fig)


def ranges_png(r: dict) -> bytes:
    from matplotlib.figure import Figure

    observed = r["observed_ranges"]["ranges"]
    rows = list({q["key"]: q for q in r["quantization"]}.values())  # one per activation, in order
    fig = Figure(figsize=(11, 7.5))
    top, bottom = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2], "hspace": 0.55})
    fig.subplots_adjust(left=0.085, right=0.98, top=0.96, bottom=0.07)
    xs = range(len(rows))
    lo = [q["scale"] * (-128 - q["zero_point"]) for q in rows]
    hi = [q["scale"] * (127 - q["zero_point"]) for q in rows]
    top.vlines(xs, lo, hi, color="#9ecae1", linewidth=6, label="int8 range: scale × (−128 … 127 − zero point)")
    seen = [(i, *observed[q["key"]]) for i, q in enumerate(rows) if q["key"] in observed]
    clipped = [olo < lo[i] or ohi > hi[i] for i, olo, ohi in seen]
    for flag, color, what in ((False, "#08519c", "values on the parity images"), (True, "#d62728", "… beyond the int8 range")):
        pick = [s for s, c in zip(seen, clipped) if c == flag]
        if pick:
            top.vlines([p[0] for p in pick], [p[1] for p in pick], [p[2] for p in pick], color=color, linewidth=2,
                       label=what)
    top.set_yscale("symlog", linthresh=1.0)
    top.set_xticks(range(len(rows)), [q["key"] for q in rows], rotation=90, fontsize=6)
    top.set_xlim(-1, len(rows))
    top.set_ylabel("activation value")
    top.set_title(f"int8 activation ranges ({r['ranges']['method']}) against the values they hold "
                  f"({r['observed_ranges']['images']} parity images)", fontsize=10)
    top.legend(fontsize=7, loc="upper right")
    dw = r["depthwise_weight_ranges"]
    if dw:
        stats = [{"whislo": s[0], "q1": s[1], "med": s[2], "q3": s[3], "whishi": s[4], "label": f"#{d['index']}"}
                 for d in dw for s in [d["max_abs"]]]
        bottom.bxp(stats, showfliers=False)
        bottom.set_yscale("log")
    bottom.set_ylabel("max |w| per channel")
    bottom.set_xlabel("depthwise op (index in the int8 model)")
    bottom.set_title("depthwise weight ranges per channel (one per-tensor scale must cover the widest)", fontsize=10)
    bottom.tick_params(axis="x", labelsize=7)
    return _png(fig)


def render_plots(r: dict) -> dict[str, bytes]:
    return {MEMORY: memory_png(r), RANGES: ranges_png(r)}
