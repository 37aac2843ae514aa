"""Stage: fill the calibrated model's activation ranges from the table, then TF's own quantizer.

Using TF's second stage (rather than editing an int8 file) lets TF itself apply the same-scale
rules, fixed output parameters and int32 bias scales. `mlir_quantize` is private API: pinned in
convert/private_api.py.
"""
from __future__ import annotations

import numpy as np

from calibration.ranges import RangesTable

from .errors import ConversionError
from .private_api import require
from .tflite_graph import Graph, schema


def apply_ranges(calibrated: bytes, mapping: dict[str, list[int]], table: RangesTable) -> bytes:
    """Overwrite min/max in place (numpy views into a copy of the flatbuffer)."""
    fb = schema()
    buf = bytearray(calibrated)
    g = fb.Model.GetRootAs(buf, 0).Subgraphs(0)
    covered = set()
    for key, indices in mapping.items():
        if key not in table.ranges:
            raise ConversionError(f"the ranges table has no entry for activation '{key}'")
        lo, hi = table.ranges[key]
        for i in indices:
            q = g.Tensors(i).Quantization()
            if q is None or q.MinLength() != 1 or q.MaxLength() != 1:
                raise ConversionError(f"TFLite tensor #{i} ('{key}') has no per-tensor calibration slot")
            q.MinAsNumpy()[0] = np.float32(lo)
            q.MaxAsNumpy()[0] = np.float32(hi)
            covered.add(i)
    for i in range(g.TensorsLength()):
        q = g.Tensors(i).Quantization()
        if q is not None and q.MinLength() == 1 and i not in covered:
            name = g.Tensors(i).Name().decode()
            raise ConversionError(f"TFLite activation #{i} '{name[:60]}' has no entry in the ranges table")
    return bytes(buf)


def int8_tflite(calibrated_with_ranges: bytes, per_channel: bool = True) -> bytes:
    require("mlir_quantize")
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    return mlir_quantize(calibrated_with_ranges, disable_per_channel=not per_channel, input_data_type=tf.int8,
                         output_data_type=tf.int8)


def expected_quantization(lo: float, hi: float) -> tuple[float, int]:
    """int8 (scale, zero point) that TFLite derives from a range (0 nudged onto the grid)."""
    scale = (hi - lo) / 255.0
    zp = int(np.clip(round(-128 - lo / scale), -128, 127))
    return scale, zp


def trace_quantization(graph: Graph, mapping: dict[str, list[int]], table: RangesTable) -> list[dict]:
    """Per activation: the table's range, the TFLite tensor(s), their scale/zero point and the
    values the range implies; raises if any differs beyond float32 rounding."""
    rows = []
    for key, indices in mapping.items():
        lo, hi = table.ranges[key]
        scale, zp = expected_quantization(lo, hi)
        for i in indices:
            t = graph.tensors[i]
            if t.dtype != "int8" or t.scale is None or t.scale.size != 1:
                raise ConversionError(f"activation '{key}' is {t.dtype} in the int8 model, not per-tensor int8")
            got_s, got_zp = float(t.scale[0]), int(t.zero_point[0])
            if abs(got_s - scale) > 1e-6 * scale or abs(got_zp - zp) > 1:
                raise ConversionError(f"activation '{key}': TFLite has scale {got_s:.6g}, zero point {got_zp}; "
                                      f"the ranges table implies {scale:.6g}, {zp}")
            rows.append({"key": key, "tensor": i, "tflite_name": t.name, "min": lo, "max": hi,
                         "scale": got_s, "zero_point": got_zp})
    return rows
