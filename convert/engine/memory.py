"""The arena plan: where each block's input and output live, and the per-stage scratch.

Activations between blocks live in one region; a block's output is written row by row over
input rows it no longer needs (shifted down by the least amount that keeps every input row it
still reads intact), or beside it when that is smaller. Each stage's scratch (the ring of
expanded rows, one depthwise row, one projected row, int32 accumulators, expanded weights; the
head's row and sums) follows the activations that stage keeps live."""
from __future__ import annotations

from dataclasses import dataclass

from .plan import Plan

ALIGN = 4


def _up(v: int, a: int = ALIGN) -> int:
    return -(-v // a) * a


@dataclass
class BlockMem:
    producer: str  # stem, expand, from_x
    x_off: int | None  # None: the block reads the image through the stem
    y_off: int
    x_bytes: int
    y_bytes: int
    ring: int
    drow: int
    prow: int
    acc: int  # offsets (absolute, into the arena)
    wexp: int  # one output field of a stored 1×1 conv, expanded
    dwexp: int  # the depthwise orbit expanded to dense
    scratch_bytes: int
    in_place: bool


@dataclass
class Memory:
    main_bytes: int  # peak of the activations between blocks
    arena_bytes: int
    blocks: list[BlockMem]
    head_x_off: int
    head_row: int
    head_sum: int
    head_wexp: int
    layout: str  # "in place" or "ping-pong"

    def to_dict(self) -> dict:
        return {"arena_bytes": self.arena_bytes, "activations_bytes": self.main_bytes,
                "peak_scratch_bytes": max([b.scratch_bytes for b in self.blocks] + [self.arena_bytes - self.head_row]),
                "layout": self.layout,
                "blocks": [{"block": i, "producer": b.producer, "input_offset": b.x_off, "input_bytes": b.x_bytes,
                            "output_offset": b.y_off, "output_bytes": b.y_bytes, "overlaps_input": b.in_place,
                            "scratch_bytes": b.scratch_bytes} for i, b in enumerate(self.blocks)],
                "head": {"input_offset": self.head_x_off, "scratch_bytes": self.arena_bytes - self.head_row}}


def producer(plan: Plan, i: int) -> str:
    b = plan.blocks[i]
    if i == 0:
        if b.expand is not None:
            raise ValueError("a stem followed by an expansion is not supported by the engine")
        return "stem"
    return "expand" if b.expand is not None else "from_x"


def _shift_needed(plan: Plan, i: int) -> int:
    """Least D ≥ 0 such that the output placed D bytes below the input never overwrites an input
    row the block still reads."""
    b = plan.blocks[i]
    h, w, cin = b.dw.in_shape if b.expand is None else b.expand.in_shape
    oh, ow, cout = b.project.out_shape
    rx, ry = w * cin, ow * cout
    k, s, pad = b.dw.kernel, b.dw.stride, b.dw.pad
    kind = producer(plan, i)
    need = 0
    for oy in range(oh - 1):
        if kind == "expand":
            keep = min(oy * s - pad + k - 1, h - 1) + 1
        else:
            keep = max((oy + 1) * s - pad, 0)
        if b.add is not None:
            keep = min(keep, oy + 1)
        if keep < h:
            need = max(need, (oy + 1) * ry - keep * rx)
    return need


def _scratch(plan: Plan, stored: dict, i: int) -> int:
    """Bytes of block i's scratch, laid out as plan_memory lays it out."""
    b = plan.blocks[i]
    h, w, hidden = b.dw.in_shape
    oh, ow, cout = b.project.out_shape
    ring = 0 if producer(plan, i) == "from_x" else b.dw.kernel * w * hidden
    pws = [(c, stored[c.name]) for c in (b.expand, b.project) if c is not None]
    wexp = max([s.n * c.in_shape[2] for c, s in pws if s.n] + [0])
    return (_up(ring + ow * hidden + ow * cout) + 4 * hidden + wexp
            + (b.dw.kernel ** 2 * hidden if stored[b.dw.name].n else 0))


def _head_scratch(plan: Plan, stored: dict) -> int:
    c = plan.head.conv.out_shape[2]
    return _up(c) + 4 * c + stored[plan.head.conv.name].n * plan.head.conv.in_shape[2]


def plan_memory(plan: Plan, stored: dict) -> Memory:
    sizes = [b.project.out_shape[0] * b.project.out_shape[1] * b.project.out_shape[2] for b in plan.blocks]
    # Each block's output goes D_i below its input (overlapping it), or beside it (below
    # offset-0-aligned, or right after it); the least peak over all choices, by dynamic programming
    # over the few distinct offsets.
    # The peak counts each stage's scratch on top of what it keeps live.
    best = {0: (_up(sizes[0]) + _scratch(plan, stored, 0), [0])}  # offset → (peak so far, offsets)
    for i in range(1, len(sizes)):
        d, nxt, scr = _shift_needed(plan, i), {}, _scratch(plan, stored, i)
        for ox, (peak, offs) in best.items():
            cands = {ox + sizes[i - 1]}
            if ox - d >= 0:
                cands.add(ox - d)
            if sizes[i] <= ox:
                cands.add(0)
            for oy in cands:
                live = max(oy + sizes[i], ox + sizes[i - 1])
                cand = (max(peak, _up(live) + scr), offs + [oy])
                if oy not in nxt or cand[0] < nxt[oy][0]:
                    nxt[oy] = cand
        best = nxt
    hs = _head_scratch(plan, stored)
    _, offs = min(best.items(), key=lambda kv: (max(kv[1][0], _up(kv[0] + sizes[-1]) + hs), kv[1][1]))[1]
    main = max(o + sz for o, sz in zip(offs, sizes))
    overlapped = sum(1 for i in range(1, len(offs)) if not (offs[i] + sizes[i] <= offs[i - 1]
                                                             or offs[i - 1] + sizes[i - 1] <= offs[i]))
    layout = f"{overlapped} of {len(offs) - 1} blocks write over their own input"
    main_al = _up(main)
    blocks, scratch_end = [], main_al
    for i, b in enumerate(plan.blocks):
        kind = producer(plan, i)
        h, w, hidden = b.dw.in_shape
        oh, ow, cout = b.project.out_shape
        x_off = None if i == 0 else offs[i - 1]
        x_bytes = 0 if i == 0 else sizes[i - 1]
        # this block's scratch starts right after the activations it keeps live
        r0 = _up(max(offs[i] + sizes[i], (x_off or 0) + x_bytes))
        ring = 0 if kind == "from_x" else b.dw.kernel * w * hidden
        d0 = r0 + ring
        p0 = d0 + ow * hidden
        a0 = _up(p0 + ow * cout)
        w0 = a0 + 4 * hidden
        pws = [(c, stored[c.name]) for c in (b.expand, b.project) if c is not None]
        wexp = max([s.n * c.in_shape[2] for c, s in pws if s.n] + [0])
        dw0 = w0 + wexp
        end = dw0 + (b.dw.kernel ** 2 * hidden if stored[b.dw.name].n else 0)
        scratch_end = max(scratch_end, end)
        overl = x_off is not None and not (offs[i] + sizes[i] <= x_off or x_off + x_bytes <= offs[i])
        blocks.append(BlockMem(kind, x_off, offs[i], x_bytes, sizes[i], r0, d0, p0, a0, w0, dw0, end - r0, overl))
    c = plan.head.conv.out_shape[2]
    head_row = _up(offs[-1] + sizes[-1])
    head_sum = _up(head_row + c)
    head_wexp = head_sum + 4 * c
    hs = stored[plan.head.conv.name]
    scratch_end = max(scratch_end, head_wexp + hs.n * plan.head.conv.in_shape[2])
    return Memory(main_al, _up(scratch_end), blocks, offs[-1], head_row, head_sum, head_wexp, layout)
