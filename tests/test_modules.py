"""Each equivariant module checks its own equivariance and matches its plain export."""
from __future__ import annotations

import pytest
import torch

from train.groups import is_grid_symmetry, parse_group
from train.nn.batchnorm import FieldBatchNorm
from train.nn.conv_bn_act import EquivariantConvBNAct
from train.nn.depthwise import EquivariantDepthwiseConv
from train.nn.equivariance import smooth_input
from train.nn.head import InvariantHead
from train.nn.inverted_residual import EquivariantInvertedResidual, regular
from train.nn.activation import PointwiseActivation

GROUPS = ["C4", "C8", "C12", "D4"]
EXACT = 1e-5  # grid symmetries (90° rotations, flips), relative
# Off-grid rotations, relative error inside a central disc on smooth inputs: 1.3–2.6 % measured
# over initialisation seeds 0–5 for C8 and C12 (one unseeded run reached 4.5 %).
FINE = {"depthwise": 0.05, "block": 0.05}


def _modules(gname):
    torch.manual_seed(0)  # the off-grid errors depend on the random filters
    g = parse_group(gname)
    t = regular(g.gspace(), 2 * g.order, g)
    return g, t, {
        "depthwise": EquivariantDepthwiseConv(t, g),
        "depthwise_s2": EquivariantDepthwiseConv(t, g, stride=2, padding=0),
        "batchnorm": FieldBatchNorm(t, g),
        "relu6": PointwiseActivation(t, g, "relu6"),
        "relu": PointwiseActivation(t, g, "relu"),
        "conv_bn_act": EquivariantConvBNAct.dense(t, t, g),
        "block": EquivariantInvertedResidual(t, 6 * t.size, t.size, 1, g),
        "block_s2": EquivariantInvertedResidual(t, 6 * t.size, 2 * t.size, 2, g),
    }


def _randomise(module):
    """Non-trivial batch-norm statistics so that the checks see a generic module."""
    gen = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, FieldBatchNorm):
            n = m.running_mean.numel()
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)
    return module


@pytest.mark.parametrize("gname", GROUPS)
def test_grid_symmetries_are_exact(gname):
    g, _, modules = _modules(gname)
    for name, m in modules.items():
        errors = _randomise(m).check_equivariance(size=23)
        grid = {el: e for el, e in errors.items() if is_grid_symmetry(g, el)}
        assert len(grid) == (8 if g.kind == "D" else 4)
        assert max(grid.values()) < EXACT, (name, grid)


@pytest.mark.parametrize("gname", ["C8", "C12"])
def test_off_grid_rotations_within_tolerance(gname):
    g, _, modules = _modules(gname)
    for name, tol in FINE.items():
        errors = modules[name].check_equivariance(size=23)
        fine = [e for el, e in errors.items() if not is_grid_symmetry(g, el)]
        assert fine and max(fine) < tol, (name, max(fine))


def test_check_detects_a_broken_filter():
    """A depthwise filter that is not a rotated copy of one filter must fail the check."""
    g, _, modules = _modules("C4")
    dw = modules["depthwise"]
    assert max(dw.check_equivariance(size=23).values()) < EXACT
    dw.eval()  # the eval-mode filter cache is what forward uses: perturb one channel of it
    dw.bank.filter[1].add_(0.05 * torch.randn_like(dw.bank.filter[1]))
    assert max(dw.check_equivariance(size=23).values()) > 1e-3


@pytest.mark.parametrize("gname", GROUPS + ["D8"])
def test_export_matches_module(gname):
    from e2cnn.nn import GeometricTensor

    _, t, modules = _modules(gname)
    x = smooth_input(2, t.size, 23)
    for name, m in modules.items():
        _randomise(m).eval()
        with torch.no_grad():
            ref = m(GeometricTensor(x, t)).tensor
            out = m.export()(x)
        assert not any("e2cnn" in type(s).__module__ for s in m.export().modules()), name
        assert torch.allclose(out, ref, rtol=1e-5, atol=1e-6 * ref.abs().max()), name


def test_depthwise_exports_a_true_depthwise_conv():
    _, t, modules = _modules("C12")
    conv = modules["depthwise"].export()
    assert isinstance(conv, torch.nn.Conv2d)
    assert conv.groups == conv.in_channels == conv.out_channels == t.size
    w = conv.weight.detach()
    # For C12, channel i + 3 of a field is channel i rotated by 90°.
    assert torch.allclose(w[3], torch.rot90(w[0], 1, dims=(1, 2)), atol=1e-6) or \
        torch.allclose(w[3], torch.rot90(w[0], -1, dims=(1, 2)), atol=1e-6)


@pytest.mark.parametrize("gname", ["C4", "C12", "D4"])
def test_head_is_invariant_and_exports_tied_weights(gname):
    from e2cnn.nn import GeometricTensor

    g = parse_group(gname)
    t = regular(g.gspace(), 3 * g.order, g)
    head = InvariantHead(t, g, 11, 2)
    errors = head.check_equivariance()
    assert max(e for el, e in errors.items() if is_grid_symmetry(g, el)) < EXACT
    plain = head.export()
    w = plain.fc.weight.detach().view(2, 3, g.order)
    assert torch.allclose(w, w[..., :1].expand_as(w))  # tied across each field
    x = smooth_input(2, t.size, 11)
    assert torch.allclose(plain(x), head(GeometricTensor(x, t)), rtol=1e-5, atol=1e-7)


def test_bad_field_types_are_refused():
    g = parse_group("C4")
    gs = g.gspace()
    from e2cnn.nn import FieldType

    trivial = FieldType(gs, [gs.trivial_repr] * 4)
    with pytest.raises(ValueError, match="regular"):
        EquivariantDepthwiseConv(trivial, g)
    with pytest.raises(ValueError, match="regular"):
        FieldBatchNorm(trivial, g)
