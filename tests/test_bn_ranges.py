"""The data-free range rules and the ReLU6-preserving equalization, each checked on models that are
right by construction (seeded init, batch-norm statistics from smooth images; no training)."""
from __future__ import annotations

import copy

import pytest
import torch

from calibration.bn_ranges import K, PROBE, analytic_ranges, _span, bn_ranges
from calibration.dfq import DFQOptions, skipped_steps
from calibration.probe import probe
from calibration.equalize import chains, equalize
from calibration.fold import fold_all
from calibration.points import activation_points
from calibration.stats import activation_stats
from train.model import build_model
from train.model.constructed import set_bn_statistics
from train.nn.equivariance import smooth_input


@pytest.fixture(scope="module")
def folded():
    torch.manual_seed(0)
    return fold_all(set_bn_statistics(build_model("C4", 0.25)).export())


def test_k_per_kind(folded):
    k = {"conv": 3.0, "residual": 7.0, "head": 4.0, "pooled": 5.0}
    r = analytic_ranges(folded, k)
    stats = activation_stats(folded)
    for p in activation_points(folded):
        if p.key.endswith(".project"):
            assert r[p.key] == pytest.approx(_span(p.module.bn_mean.double(), p.module.bn_std.double(), 7.0))
        elif p.key.endswith(".add"):
            assert r[p.key] == pytest.approx(_span(stats[p.key].mean, stats[p.key].std, 7.0))
        elif p.key.endswith(".dw"):  # ReLU6: k = 3, clipped to [0, 6]
            lo, hi = _span(p.module.bn_mean.double(), p.module.bn_std.double(), 3.0)
            assert r[p.key] == pytest.approx((min(max(lo, 0), 6), max(min(hi, 6), 0)))
    assert any(p.key.endswith(".add") for p in activation_points(folded))
    assert bn_ranges(folded, 3.0, probe="none").notes["k"]["conv"] == 3.0  # --bn-k sets the conv k


def test_kinds_override_one_k_each(folded):
    base = bn_ranges(folded, probe="none").ranges
    t = bn_ranges(folded, probe="none", kinds={"conv": 3.0})  # below the ReLU6 clip, so the .dw ranges move
    assert t.notes["k"]["conv"] == 3.0 and t.ranges["logits"] == base["logits"]  # the head bound keeps K["pooled"]
    assert any(t.ranges[k] != base[k] for k in base if k.endswith(".dw"))
    lo, hi = bn_ranges(folded, 8.0, probe="none").ranges["logits"]  # --bn-k also sets the head bound's k
    assert lo < base["logits"][0] and hi > base["logits"][1]
    with pytest.raises(ValueError, match="unknown kinds"):
        bn_ranges(folded, kinds={"resid": 8.0})


def test_probe_covers_tails_and_correlated_adds(folded):
    """probe="tails": every conv output and add covers what the probe images reached and its own
    k·std rule; adds take their spread from the probe (correlated branches); the pooled mean keeps its
    analytic bound; the logits are narrowed to the probe's spread across images, never past the bound."""
    bound = bn_ranges(folded, probe="none").ranges
    t = bn_ranges(folded)
    seen = probe(folded, **PROBE)
    points = activation_points(folded)
    adds = {p.key: seen.stats[p.key] for p in points if p.kind == "add"}
    rule = analytic_ranges(folded, K, adds)
    for p in points:
        if p.kind not in ("conv", "add"):
            continue
        lo, hi = t.ranges[p.key]
        plo, phi = seen.extremes[p.key]
        assert lo == min(rule[p.key][0], plo, 0) and hi == max(rule[p.key][1], phi, 0)  # both covered, no more
    assert any(t.ranges[p.key] != (min(rule[p.key][0], 0), max(rule[p.key][1], 0))
               for p in points if p.kind == "conv")  # the probe did widen some
    # the probe's add spread is its own measurement, not the independent-branch sum
    stats = activation_stats(folded)
    assert any(not torch.allclose(adds[k].std, stats[k].std, rtol=0.02) for k in adds)
    assert t.ranges["head.mean"] == bound["head.mean"]
    assert t.ranges["head.mask"] == t.ranges["head_conv"]
    lo, hi = t.ranges["logits"]
    assert bound["logits"][0] <= lo and hi <= bound["logits"][1]
    v = seen.per_image["logits"]
    assert lo <= float(v.min()) and float(v.max()) <= hi
    assert hi - lo < 0.5 * (bound["logits"][1] - bound["logits"][0])
    assert t.ranges == bn_ranges(folded).ranges  # deterministic: a fixed seed, no image read
    assert t.notes["probe"] == "tails" and t.notes["probe_images"] == PROBE


def test_probe_head_informs_only_the_pooled_mean_and_logits(folded):
    bound = bn_ranges(folded, probe="none").ranges
    t = bn_ranges(folded, probe="head").ranges
    for key in ("head.mean", "logits"):
        assert bound[key][0] <= t[key][0] and t[key][1] <= bound[key][1]
    assert {k: v for k, v in t.items() if k not in ("head.mean", "logits")} == \
           {k: v for k, v in bound.items() if k not in ("head.mean", "logits")}
    with pytest.raises(ValueError, match="probe must be one of"):
        bn_ranges(folded, probe="bound")


def test_probe_sees_every_activation_it_summarises(folded):
    seen = probe(folded, count=4, steps=2)
    keys = {p.key for p in activation_points(folded) if p.kind not in ("input",)}
    assert keys <= set(seen.stats) and keys <= set(seen.extremes)
    assert seen.per_image["logits"].shape[0] == 4 and seen.per_image["head.mean"].shape[0] == 4
    for key, (lo, hi) in seen.extremes.items():
        assert lo <= hi and bool((seen.stats[key].std >= 0).all())


def test_residual_k_widens_only_the_residual_stream(folded):
    new, old = analytic_ranges(folded, {**K, "residual": 8.0}), analytic_ranges(folded, {**K, "residual": K["conv"]})
    for p in activation_points(folded):
        if p.key.endswith((".add", ".project")):
            assert new[p.key][1] - new[p.key][0] > old[p.key][1] - old[p.key][0]
        elif p.key.endswith((".dw", ".expand")):
            assert new[p.key] == old[p.key]


def _pre_activations(m, x):
    seen = {}
    hooks = [u.conv.register_forward_hook(lambda mod, i, o, u=u: seen.__setitem__(u, o)) for u in m.conv_units()]
    with torch.no_grad():
        m(x)
    for h in hooks:
        h.remove()
    return seen


def test_relu6_preserving_equalization(folded):
    """Statistics set so that β + kγ is each field's highest pre-activation on the images: fields
    below 6 are rescaled with the function kept exactly on those images, the others are not."""
    m, k = copy.deepcopy(folded), 5.0
    x = 128 + 40 * smooth_input(4, 3, 95, seed=7, sigma=3.0)
    f = m.field_size
    with torch.no_grad():
        for u, o in _pre_activations(m, x).items():
            top = o.amax(dim=(0, 2, 3)).view(-1, f).amax(1).repeat_interleave(f)
            mean = o.mean(dim=(0, 2, 3)).view(-1, f).mean(1).repeat_interleave(f)
            u.bn_mean.copy_(mean)
            u.bn_std.copy_(((top - mean) / k).clamp_min(1e-6))
    assert skipped_steps(m, DFQOptions()) == {"equalize": "no pairs", "absorb_high_biases": "no pairs"}
    assert skipped_steps(m, DFQOptions(relu6="relu")) == {}
    e = equalize(m, clip_k=k)
    rescaled = eligible = 0
    for ca, ce in zip(chains(m), chains(e)):
        for (a0, b0), (a, b) in zip(zip(ca, ca[1:]), zip(ce, ce[1:])):
            if not isinstance(a0.act, torch.nn.ReLU6):
                continue
            ok = (a0.bn_mean + k * a0.bn_std <= 6)
            eligible += int(ok.sum())
            s = a0.bn_std / a.bn_std  # the scale applied to a's outputs (only that changes its statistics)
            assert torch.allclose(s[~ok], torch.ones_like(s[~ok]))  # fields reaching the clip: untouched
            if bool(ok.any()):  # the scaled bound stays below the clip, so ReLU6 still acts as a ReLU
                assert float((a.bn_mean + k * a.bn_std)[ok].max()) <= 6 + 1e-5
            rescaled += int((s[ok] - 1).abs().gt(1e-3).sum())
    assert eligible and rescaled
    with torch.no_grad():
        assert float((e(x) - m(x)).abs().max() / m(x).abs().max()) < 1e-4
    assert not any(hasattr(u, "eligible") for u in e.conv_units())


def test_probe_ranges_do_not_depend_on_the_thread_count(folded, monkeypatch):
    from calibration import distill

    inner, seen_threads = distill.distill_images, []

    def spy(*a, **kw):
        seen_threads.append(torch.get_num_threads())
        return inner(*a, **kw)

    monkeypatch.setattr(distill, "distill_images", spy)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = bn_ranges(folded).ranges
        assert torch.get_num_threads() == 2  # the caller's count is given back
        torch.set_num_threads(1)
        one = bn_ranges(folded).ranges
    finally:
        torch.set_num_threads(threads)
    assert one == two and seen_threads == [1, 1]  # the probe distils on one thread whatever the caller's


def test_probe_gives_the_thread_count_back_on_error(folded, monkeypatch):
    from calibration import distill

    def fail(*a, **kw):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(distill, "distill_images", fail)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match="interrupted"):
            bn_ranges(folded)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
