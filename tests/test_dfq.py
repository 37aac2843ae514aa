"""Data-free quantization steps: each changes parameters, does what it says, and keeps the float
function (bias correction excepted) and equivariance."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from calibration.absorb import absorb_high_biases
from calibration.bias_correction import correct_bias, quantization_error
from calibration.bn_ranges import bn_ranges
from calibration.equalize import chains, equalize, in_ranges, out_ranges, relu6_to_relu
from calibration.fold import fold_all
from calibration.points import activation_points
from train.model.constructed import set_bn_statistics
from train.checkpoint import load_model
from train.model import build_model

SAME = 1e-4  # relative change of the logits allowed for function-preserving steps


@pytest.fixture(scope="module")
def images(demo_dir):
    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    return next(batches(PCamSplit(demo_dir, "test"), 32, 95))[0]


@pytest.fixture(scope="module")
def folded(c4_checkpoint):
    model, _, _ = load_model(c4_checkpoint)
    return model, fold_all(model.export())


def _logits(m, x):
    with torch.no_grad():
        return m(x)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def _rot90_exact(m):
    """Logits of the float64 model are invariant to 90° rotations (float rounding only)."""
    import copy

    m = copy.deepcopy(m).double()  # a copy: the fixtures stay float32
    x = torch.rand(2, 3, 95, 95, dtype=torch.float64) * 255
    ref = _logits(m, x)
    return max(_rel(_logits(m, torch.rot90(x, k, dims=(2, 3))), ref) for k in (1, 2, 3))


def test_fold(folded, images):
    model, f = folded
    assert not any(isinstance(u.bn, torch.nn.BatchNorm2d) for u in f.conv_units())
    assert isinstance(f.normalize, torch.nn.Identity) and all(hasattr(u, "bn_mean") for u in f.conv_units())
    assert _rel(_logits(f, images), _logits(model, images)) < SAME
    assert _rot90_exact(f) < 1e-10


def test_relu6_to_relu_only_where_rescaled(folded):
    _, f = folded
    r = relu6_to_relu(f)
    rescaled = {id(u) for c in chains(r) for u in c[:-1]}
    assert rescaled
    for u0, u in zip(f.conv_units(), r.conv_units()):
        assert type(u.act) is (torch.nn.ReLU if id(u) in rescaled else type(u0.act))
    assert isinstance(r.head_conv.act, torch.nn.ReLU6)  # the head keeps its clip


def test_equalization(folded, images):
    _, f = folded
    r = relu6_to_relu(f)
    e = equalize(r)
    field = e.field_size
    changed = rescaled = False
    for chain_r, chain_e in zip(chains(r), chains(e)):
        for (a0, b0), (a, b) in zip(zip(chain_r, chain_r[1:]), zip(chain_e, chain_e[1:])):
            changed |= not torch.allclose(a0.conv.weight, a.conv.weight)
            ra = out_ranges(a.conv).view(-1, field).amax(1)
            rb = in_ranges(b.conv).view(-1, field).amax(1)
            assert torch.allclose(ra, rb, rtol=1e-3)  # ranges equalised, per field
            # one scale per field: A's output channels were divided by s, constant over each field
            s = (out_ranges(a0.conv) / out_ranges(a.conv)).view(-1, field)
            assert torch.allclose(s, s[:, :1].expand(-1, field), rtol=1e-4)
            rescaled |= bool(((s - 1).abs() > 1e-3).any())
    assert changed and rescaled
    assert _rel(_logits(e, images), _logits(r, images)) < SAME
    assert _rot90_exact(e) < 1e-10


def _bound_statistics_from_below(m, x, k):
    """Set each unit's (β, γ) so that β − kγ is exactly the lowest pre-activation seen on x."""
    seen = {}
    hooks = [u.conv.register_forward_hook(lambda mod, i, o, u=u: seen.__setitem__(u, o)) for u in m.conv_units()]
    _logits(m, x)
    for h in hooks:
        h.remove()
    with torch.no_grad():
        for u, o in seen.items():
            mean, low = o.mean(dim=(0, 2, 3)), o.amin(dim=(0, 2, 3))
            mean, low = (t.view(-1, m.field_size).mean(1).repeat_interleave(m.field_size) for t in (mean, low))
            low = torch.minimum(low, o.amin(dim=(0, 2, 3)).view(-1, m.field_size).amin(1)
                                .repeat_interleave(m.field_size))  # the field's lowest
            u.bn_mean.copy_(mean)
            u.bn_std.copy_(((mean - low) / k).clamp_min(1e-6))


def test_relu6_pairs_are_left_alone_and_relu_networks_equalize_exactly(folded, images, demo_dir):
    _, f = folded
    kept = equalize(f)  # ReLU6 everywhere: nothing may be rescaled
    assert all(torch.equal(a.conv.weight, b.conv.weight) for a, b in zip(f.conv_units(), kept.conv_units()))
    torch.manual_seed(0)
    relu_net = set_bn_statistics(build_model("C4", 0.25, activation="relu"))
    r = fold_all(relu_net.export())
    e = equalize(r)
    assert not torch.equal(r.blocks[1].dw.conv.weight, e.blocks[1].dw.conv.weight)
    assert _rel(_logits(e, images), _logits(r, images)) < SAME
    assert _rot90_exact(e) < 1e-10


def test_high_bias_absorption(c4_checkpoint, images):
    """Absorption is exact wherever pre-activations stay above c = β − kγ. The DFQ paper's Gaussian
    assumption (k = 3) is only approximately true of real activations (the report measures the
    effect); here the statistics bound the pre-activations on these images from below, and half the
    fields get a batch-norm shift that makes c positive, so the bookkeeping itself is tested."""
    model, _, _ = load_model(c4_checkpoint)
    plain = model.export()
    for u in plain.conv_units():
        pick = (torch.arange(u.bn.bias.numel()) // plain.field_size) % 2 == 0
        with torch.no_grad():
            u.bn.bias[pick] += 8 * u.bn.weight[pick].abs()  # moves the real pre-activations up too
    m = relu6_to_relu(fold_all(plain))
    _bound_statistics_from_below(m, images, k=3.0)
    a = absorb_high_biases(m, k=3.0)
    shifted = [(u0, u) for u0, u in zip(m.conv_units(), a.conv_units()) if not torch.equal(u0.conv.bias, u.conv.bias)]
    assert shifted  # biases moved
    assert any(float((u.bn_mean - u0.bn_mean).min()) < -0.5 for u0, u in shifted)  # activation ranges shrank
    assert _rel(_logits(a, images), _logits(m, images)) < SAME
    assert _rot90_exact(a) < 1e-10
    hi = lambda t: max(h for _, h in t.ranges.values())
    assert hi(bn_ranges(a)) <= hi(bn_ranges(m))


def test_bias_correction_cancels_the_expected_weight_error(demo_dir):
    """Batch-norm statistics measured on the very images used: each layer, fed its float input,
    shifts its mean output by ε·E[x] when its weights are rounded to int8; with the corrected bias
    that shift is mostly gone (E[x] comes from a Gaussian model of the statistics, not the data)."""
    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    torch.manual_seed(0)
    model = build_model("C4", 0.25)
    x = next(batches(PCamSplit(demo_dir, "train"), 64, 95))[0]
    model.train()
    for mod in model.modules():
        if hasattr(mod, "momentum"):
            mod.momentum = None
    with torch.no_grad():
        model(x)
    f = fold_all(model.eval().export())
    c = correct_bias(f)
    inputs = {}
    hooks = [u.conv.register_forward_pre_hook(lambda mod, a, u=u: inputs.__setitem__(u, a[0]))
             for u in f.conv_units()]
    _logits(f, x)
    for h in hooks:
        h.remove()

    def shift(unit_f, bias):
        conv = unit_f.conv
        w_q = conv.weight + quantization_error(conv.weight).to(conv.weight.dtype)
        with torch.no_grad():
            y_f = conv(inputs[unit_f])
            y_q = torch.nn.functional.conv2d(inputs[unit_f], w_q, bias, conv.stride, conv.padding, 1, conv.groups)
        return float((y_q - y_f).mean(dim=(0, 2, 3)).abs().mean())

    pairs = list(zip(f.conv_units()[1:], c.conv_units()[1:]))  # the stem is not corrected
    assert any(not torch.equal(uf.conv.bias, uc.conv.bias) for uf, uc in pairs)
    before = sum(shift(uf, uf.conv.bias) for uf, _ in pairs)
    after = sum(shift(uf, uc.conv.bias) for uf, uc in pairs)
    assert after < 0.5 * before, (before, after)
    assert _rot90_exact(c) < 1e-10


def test_bn_ranges_follow_the_rule(folded):
    from calibration.bn_ranges import K

    _, f = folded
    k = 3.0
    t = bn_ranges(f, k, probe="none")
    assert t.method == "bn" and t.ranges["image"] == (0.0, 255.0)
    u = f.blocks[2].project  # linear, on the residual stream: its own k
    lo = float((u.bn_mean - K["residual"] * u.bn_std).min())
    hi = float((u.bn_mean + K["residual"] * u.bn_std).max())
    assert t.ranges["blocks.2.project"] == pytest.approx((min(lo, 0), max(hi, 0)))
    u = f.blocks[2].dw  # ReLU6: clipped to [0, 6]
    assert t.ranges["blocks.2.dw"][0] == 0 and t.ranges["blocks.2.dw"][1] <= 6
    assert set(t.ranges) == {p.key for p in activation_points(f)}
    wider = bn_ranges(f, 6.0, probe="none")  # k (--bn-k) widens the activations below their clip
    below = [p.key for p in activation_points(f) if p.act == "relu6" and t.ranges[p.key][1] < 6]
    assert below and all(wider.ranges[key][1] > t.ranges[key][1] for key in below)


def test_distilled_images_match_batch_norm_statistics(folded):
    from calibration.distill import distill_images, distilled_ranges

    _, f = folded
    few = distill_images(f, count=4, steps=1)
    more = distill_images(f, count=4, steps=30)
    assert torch.equal(distill_images(f, count=4, steps=1), few)  # seeded: reconversion is byte-identical
    assert not torch.equal(few[0], few[1]) and not torch.equal(few, more)

    def mismatch(x):
        outs = {}
        hooks = [u.conv.register_forward_hook(lambda m, i, o, u=u: outs.__setitem__(u, o)) for u in f.conv_units()]
        with torch.no_grad():
            f(x)
        for h in hooks:
            h.remove()
        return sum(float((((o.mean(dim=(0, 2, 3)) - u.bn_mean) / u.bn_std.mean()) ** 2).mean()
                         + (((o.std(dim=(0, 2, 3)) - u.bn_std) / u.bn_std.mean()) ** 2).mean())
                   for u, o in outs.items())

    assert mismatch(more) < 0.75 * mismatch(few)  # 30 Adam steps on 4 images: −40 % measured
    t = distilled_ranges(f, count=4, steps=5)
    assert t.method == "distilled" and set(t.ranges) == {p.key for p in activation_points(f)}
    bn = bn_ranges(f).ranges  # pooled features and logits: the bn rule's (distilled images barely differ there)
    assert all(t.ranges[k] == bn[k] for k in ("head.mean", "logits"))
    assert t.ranges["blocks.2.project"] != bn["blocks.2.project"]  # the rest is measured on the distilled images


def test_distillation_uses_torch_adams_update_without_torch_optim():
    """calibration/distill.py's Adam is torch.optim.Adam's update bit for bit (so distilled ranges are
    what they were), without the TorchDynamo import that leaves a folder in $TMPDIR."""
    import os
    import subprocess
    import sys
    import tempfile

    from calibration.distill import _Adam

    g = torch.Generator().manual_seed(0)
    z0, w = torch.randn(4, 3, 9, 9, generator=g), torch.randn(4, 3, 9, 9, generator=g)
    a, b = z0.clone().requires_grad_(True), z0.clone().requires_grad_(True)
    ours, theirs = _Adam(a, 0.1), torch.optim.Adam([b], lr=0.1)
    for _ in range(12):
        ((torch.sigmoid(a) * w) ** 2).sum().backward()
        ours.step()
        theirs.zero_grad()
        ((torch.sigmoid(b) * w) ** 2).sum().backward()
        theirs.step()
    assert torch.equal(a, b) and not torch.equal(a, z0)
    with tempfile.TemporaryDirectory() as tmp:  # the distillation itself writes nothing to $TMPDIR
        code = ("import torch; from calibration.distill import _Adam; z = torch.ones(3, requires_grad=True); "
                "o = _Adam(z, 0.1); (z ** 2).sum().backward(); o.step()")
        root = Path(__file__).resolve().parents[1]
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "TMPDIR": tmp}, cwd=root)
        assert os.listdir(tmp) == []
