"""engine_report.{json,md}: per layer the storage form and bytes, the memory plan, the totals."""
from __future__ import annotations

import json


def layers(engine) -> list[dict]:
    rows = []
    plan = engine.plan
    convs = [("stem", plan.stem)]
    for b in plan.blocks:
        convs += [(c.name, c) for c in (b.expand, b.dw, b.project) if c is not None]
    convs.append((plan.head.conv.name, plan.head.conv))
    for name, conv in convs:
        s = engine.stored[name]
        rows.append({"layer": name, "op_index": conv.op_index,
                     "op": "DEPTHWISE_CONV_2D" if conv.depthwise else "CONV_2D",
                     "shape": list(conv.w.shape), "form": s.form, "field": s.n, "weight_bytes": s.weight_bytes,
                     "dense_weight_bytes": s.dense_bytes, "param_bytes": s.param_bytes,
                     "params_per": "field" if s.qtie > 1 else "orbit base" if s.qtie < 0 else "channel", "dense_because": s.reason or None})
    fc = engine.stored["head.fc"]
    rows.append({"layer": "head.fc", "op_index": plan.head.fc_op, "op": "FULLY_CONNECTED",
                 "shape": list(plan.head.fc_w.shape), "form": fc.form, "field": fc.n, "weight_bytes": fc.weight_bytes,
                 "dense_weight_bytes": fc.dense_bytes, "param_bytes": engine.fc_param_bytes,
                 "params_per": "class", "dense_because": fc.reason or None})
    return rows


def build(engine, *, model_name: str, model_sha256: str, tflite_bytes: int, tflm_arena_bytes: int | None,
          tflm_arena_source: str) -> dict:
    rows = layers(engine)
    dense = sum(r["dense_weight_bytes"] for r in rows)
    stored = sum(r["weight_bytes"] for r in rows)
    input_bytes = int(engine.plan.input_shape[0] * engine.plan.input_shape[1] * engine.plan.input_shape[2])
    arena = engine.memory.arena_bytes
    totals = {
        "weights_bytes": engine.weights_bytes,
        "int8_weights_stored_bytes": stored,
        "int8_weights_dense_bytes": dense,
        "weights_vs_dense": round(stored / dense, 4) if dense else None,
        "arena_bytes": arena,
        "input_bytes": input_bytes,
        "arena_plus_input_bytes": arena + input_bytes,
        "tflm_arena_bytes": tflm_arena_bytes,
        "tflm_arena_source": tflm_arena_source,
        "ram_vs_tflm": round((arena + input_bytes) / tflm_arena_bytes, 4) if tflm_arena_bytes else None,
        "tflite_bytes": tflite_bytes,
    }
    return {"model": model_name, "model_sha256": model_sha256, "symmetry": engine.symmetry.name,
            "field_size": engine.symmetry.field, "ops": engine.plan.ops, "totals": totals, "layers": rows,
            "memory": engine.memory.to_dict(),
            "dense_fallbacks": [r["layer"] for r in rows if r["form"] == "dense" and r["dense_because"]]}


def markdown(rep: dict) -> str:
    t = rep["totals"]
    kb = lambda v: "—" if v is None else f"{v / 1024:.1f} KiB"  # noqa: E731
    lines = [f"# e2micro engine: {rep['model']} ({rep['symmetry']})", "",
             "| total | bytes |", "|---|---|",
             f"| const data (weights, biases, multipliers, masks) | {t['weights_bytes']} ({kb(t['weights_bytes'])}) |",
             f"| int8 weights stored / dense | {t['int8_weights_stored_bytes']} / {t['int8_weights_dense_bytes']} "
             f"({t['weights_vs_dense']}) |",
             f"| arena | {t['arena_bytes']} ({kb(t['arena_bytes'])}) |",
             f"| input buffer | {t['input_bytes']} |",
             f"| arena + input vs TFLM's arena ({t['tflm_arena_source']}) | {t['arena_plus_input_bytes']} / "
             f"{t['tflm_arena_bytes']} ({t['ram_vs_tflm']}) |",
             f"| .tflite | {t['tflite_bytes']} |", ""]
    if rep["dense_fallbacks"]:
        lines += ["Stored dense because the structure check failed: " + ", ".join(rep["dense_fallbacks"]), ""]
    lines += ["| layer | op | form | weight bytes | dense | params per | why dense |", "|---|---|---|---|---|---|---|"]
    for r in rep["layers"]:
        lines.append(f"| {r['layer']} | {r['op']} | {r['form']} | {r['weight_bytes']} | {r['dense_weight_bytes']} | "
                     f"{r['params_per']} | {r['dense_because'] or ''} |")
    m = rep["memory"]
    lines += ["", f"## Memory plan ({m['layout']})", "",
              f"activations peak {m['activations_bytes']} bytes, largest stage scratch {m['peak_scratch_bytes']} bytes, "
              f"arena {m['arena_bytes']} bytes", "",
              "| block | rows from | input @ bytes | output @ bytes | overlaps input | scratch |", "|---|---|---|---|---|---|"]
    for b in m["blocks"]:
        inp = "image (via the stem)" if b["input_offset"] is None else f"{b['input_offset']} + {b['input_bytes']}"
        lines.append(f"| {b['block']} | {b['producer']} | {inp} | {b['output_offset']} + {b['output_bytes']} | "
                     f"{'yes' if b['overlaps_input'] else 'no'} | {b['scratch_bytes']} |")
    return "\n".join(lines) + "\n"


def dumps(rep: dict) -> str:
    return json.dumps(rep, indent=2, sort_keys=True) + "\n"
