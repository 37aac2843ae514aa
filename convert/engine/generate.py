"""int8 .tflite → plan → storage per layer → memory plan → e2m_model.{h,c} + engine_report."""
from __future__ import annotations

from dataclasses import dataclass

from . import storage
from .emit import header, source
from .memory import Memory, plan_memory
from .plan import Plan, build_plan


@dataclass
class Symmetry:
    """field: channels of one regular field (|G|); rot: channels over which the 90° orbit runs
    (N for C_N and for each reflection half of D_N); cyclic: block-circulant 1×1 applies (C_N)."""
    name: str
    field: int
    rot: int
    cyclic: bool

    @classmethod
    def of(cls, group: str | None) -> "Symmetry":
        from train.groups import parse_group

        g = parse_group(group)
        if g is None:
            return cls("none", 0, 0, False)
        return cls(g.name, g.order, g.n, g.kind == "C")

    def table(self):
        return storage.group_table(self.name)


@dataclass
class Engine:
    plan: Plan
    memory: Memory
    stored: dict[str, storage.Stored]
    symmetry: Symmetry
    h: str
    c: str

    @property
    def fc_param_bytes(self) -> int:
        hd = self.plan.head
        return int(hd.fc_bias.nbytes + hd.fc_mult.nbytes + hd.fc_shift.size)

    @property
    def weights_bytes(self) -> int:
        """Every const byte the model's C holds (weights, requantisation parameters, masks)."""
        tables = {s.perm.tobytes() for s in self.stored.values() if s.perm is not None}
        return (sum(s.bytes for s in self.stored.values()) + self.fc_param_bytes + sum(map(len, tables))
                + self.plan.input_mask.mask.size + self.plan.head.mask.mask.size)


def _store(plan: Plan, sym: Symmetry) -> dict[str, storage.Stored]:
    out = {}
    st = plan.stem
    out["stem"] = storage.stem(st.w, st.bias, st.mult, st.shift, sym.rot)
    for b in plan.blocks:
        for conv in (b.expand, b.project):
            if conv is not None:
                out[conv.name] = _pointwise(conv, sym)
        out[b.dw.name] = storage.depthwise(b.dw.w, b.dw.bias, b.dw.mult, b.dw.shift, sym.rot)
    out[plan.head.conv.name] = _pointwise(plan.head.conv, sym)
    fc = storage.classifier(plan.head.fc_w, sym.field)
    out["head.fc"] = fc
    return out


def _pointwise(conv, sym: Symmetry) -> storage.Stored:
    table = None if sym.cyclic or not sym.field else sym.table()
    return storage.pointwise(conv.w[:, 0, 0, :], conv.bias, conv.mult, conv.shift, conv.in_off, sym.field, table)


def generate(graph, group: str | None, labels: list[str], checkpoint_sha256: str | None = None) -> Engine:
    plan = build_plan(graph)
    sym = Symmetry.of(group)
    stored = _store(plan, sym)
    mem = plan_memory(plan, stored)
    e = Engine(plan, mem, stored, sym, "", "")
    e.h = header(plan, mem, labels, e.weights_bytes, checkpoint_sha256)
    e.c = source(plan, mem, stored, checkpoint_sha256)
    return e
