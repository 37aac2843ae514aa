"""The whole network: invariance, export parity, odd grids, true depthwise layers, the twin."""
from __future__ import annotations

import pytest
import torch

from train.model.constructed import set_bn_statistics
from train.config import ModelConfig
from train.groups import is_grid_symmetry
from train.model import build_model
from train.plain import PlainMobileNetV2

EXACT = 1e-5
FLOAT32_NET = 1e-4  # float32 sums in another order after a rotation: ~1e-5 relative over 50 layers


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return {g: set_bn_statistics(build_model(g, 0.25)) for g in ["C4", "C8", "C12", "D4", "D8"]}


@pytest.mark.parametrize("gname", ["C4", "C8", "C12", "D4", "D8"])
def test_logits_invariant_to_grid_symmetries(nets, gname):
    net = nets[gname]
    errors = net.check_equivariance()
    grid = [e for el, e in errors.items() if is_grid_symmetry(net.group, el)]
    assert len(grid) == (8 if gname.startswith("D") else 4)
    assert max(grid) < FLOAT32_NET
    # In float64 (on the export, which has no shared e2cnn caches to convert) rotations are exact.
    plain = net.export().double()
    x = torch.rand(2, 3, 95, 95, dtype=torch.float64) * 255
    with torch.no_grad():
        ref = plain(x)
        for flip in ((False, True) if gname.startswith("D") else (False,)):
            for k in range(4):
                xr = torch.rot90(x.flip(-1) if flip else x, k, dims=(2, 3))
                assert (plain(xr) - ref).abs().max() < EXACT * 1e-4 * ref.abs().max()


def test_invariance_on_real_looking_images(nets, demo_dir):
    """All 8 grid symmetries on demo patches (not only smooth noise) for the dihedral model."""
    from train.data.loader import batches
    from train.data.pcam import PCamSplit
    from train.nn.equivariance import rotate_images

    x, _ = next(batches(PCamSplit(demo_dir, "test"), 8, 95))
    net = nets["D4"]
    with torch.no_grad():
        ref = net(x)
        for flip in (False, True):
            for deg in (0, 90, 180, 270):
                out = net(rotate_images(x, deg, flip))
                assert (out - ref).abs().max() <= FLOAT32_NET * ref.abs().max()


def test_conventional_twin_is_not_invariant():
    """The same check on the twin must see a difference: the check can fail."""
    torch.manual_seed(0)
    twin = set_bn_statistics(build_model(None, 0.25))
    x = torch.rand(2, 3, 95, 95) * 255
    with torch.no_grad():
        ref, rot = twin(x), twin(torch.rot90(x, 1, dims=(2, 3)))
    assert (rot - ref).abs().max() > 1e-3 * ref.abs().max()


@pytest.mark.parametrize("gname", ["C4", "C12", "D4"])
def test_export_parity_and_plain_modules(nets, gname):
    net = nets[gname]
    plain = net.export()
    assert isinstance(plain, PlainMobileNetV2)
    assert not [type(m) for m in plain.modules() if "e2cnn" in type(m).__module__]
    x = torch.rand(3, 3, 95, 95) * 255
    with torch.no_grad():
        ref, out = net(x), plain(x)
    assert torch.allclose(out, ref, rtol=1e-5, atol=1e-5 * ref.abs().max())


def _grid_sizes(model, x):
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[-2:])))
             for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("gname", ["C12", None])
def test_every_feature_map_is_odd(nets, gname):
    plain = nets[gname].export() if gname else build_model(None, 0.25).eval()
    sizes = _grid_sizes(plain, torch.rand(1, 3, 95, 95) * 255)
    assert sizes and all(h % 2 == 1 and w % 2 == 1 for h, w in sizes)
    assert sorted({h for h, _ in sizes}, reverse=True) == [47, 23, 11]


def test_exported_depthwise_layers_are_truly_depthwise(nets):
    plain = nets["C12"].export()
    dws = [b.dw.conv for b in plain.blocks]
    assert dws and all(c.groups == c.in_channels == c.out_channels for c in dws)
    others = [m for m in plain.modules() if isinstance(m, torch.nn.Conv2d) and m not in dws]
    assert all(c.groups == 1 for c in others)  # no grouped convolution anywhere else


def test_channels_are_whole_fields_and_twin_matches_structure():
    eq = build_model("C12", 1.0).export()
    twin = build_model(None, 1.0)
    assert eq.field_size == 12 and twin.field_size == 1
    for m in eq.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert m.out_channels % 12 == 0
    strides = lambda p: [m.stride for m in p.modules() if isinstance(m, torch.nn.Conv2d)]
    kernels = lambda p: [m.kernel_size for m in p.modules() if isinstance(m, torch.nn.Conv2d)]
    assert strides(eq) == strides(twin) and kernels(eq) == kernels(twin)
    assert torch.equal(eq.input_mask.mask, twin.input_mask.mask)
    assert torch.equal(eq.head.mask.mask, twin.head.mask.mask)


def test_relu_variant_is_invariant_and_exports():
    torch.manual_seed(0)
    net = set_bn_statistics(build_model("C8", 0.25, activation="relu"))
    assert max(e for el, e in net.check_equivariance().items() if is_grid_symmetry(net.group, el)) < FLOAT32_NET
    plain = net.export()
    assert any(isinstance(m, torch.nn.ReLU) for m in plain.modules())
    assert not any(isinstance(m, torch.nn.ReLU6) for m in plain.modules())
    x = torch.rand(2, 3, 95, 95) * 255
    with torch.no_grad():
        assert torch.allclose(plain(x), net(x), rtol=1e-5, atol=1e-5 * net(x).abs().max())
    with pytest.raises(ValueError, match="activation"):
        build_model("C4", activation="gelu")


def test_two_field_floor_is_invariant_exports_and_is_stored():
    torch.manual_seed(0)
    net = set_bn_statistics(build_model("C12", 0.25, min_fields=2))
    assert net.arch.stem == 24 and min(b.cout for b in net.arch.blocks) == 24
    assert max(e for el, e in net.check_equivariance().items() if is_grid_symmetry(net.group, el)) < FLOAT32_NET
    plain = net.export()
    x = torch.rand(2, 3, 95, 95) * 255
    with torch.no_grad():
        assert torch.allclose(plain(x), net(x), rtol=1e-5, atol=1e-5 * net(x).abs().max())
    d = net.config.to_dict()
    assert d["min_fields"] == 2 and ModelConfig.from_dict(d) == net.config
    old = {k: v for k, v in d.items() if k != "min_fields"}  # a checkpoint written before the key existed
    assert ModelConfig.from_dict(old).min_fields == 1
    for bad in (0, 9, 1.5, True):
        with pytest.raises(ValueError, match="min_fields"):
            ModelConfig(group="C12", min_fields=bad)
    with pytest.raises(ValueError, match="twin"):
        ModelConfig(group=None, min_fields=2)


def test_input_contract():
    net = build_model("C4", 0.25).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 95, 95) * 255).shape == (2, 2)
    with pytest.raises(ValueError, match="even"):
        net(torch.rand(1, 3, 96, 96))
    with pytest.raises(ValueError, match=r"\[B, 3, 95, 95\]"):
        net(torch.rand(1, 1, 95, 95))
    with pytest.raises(ValueError, match="even"):
        ModelConfig(input_size=96)
    with pytest.raises(ValueError, match="odd"):
        build_model("C4", 0.25, input_size=97)
    with pytest.raises(ValueError, match="multiple of 4"):
        build_model("C6")
    assert build_model("C4", 0.25, input_size=63).eval()(torch.rand(1, 3, 63, 63)).shape == (1, 2)


def test_circular_mask_and_masked_pooling():
    from train.plain import circular_mask

    m = circular_mask(95)
    assert m[47, 0] == 1 and m[0, 0] == 0 and m[47, 47] == 1
    for k in range(4):
        assert torch.equal(torch.rot90(m, k), m)
    assert torch.equal(m.flip(0), m)
    net = build_model("C4", 0.25).eval()
    x = torch.rand(1, 3, 95, 95) * 255
    outside = x.clone()
    outside[..., m == 0] = 0  # changing pixels outside the field of view changes nothing
    with torch.no_grad():
        assert torch.equal(net(x), net(outside))
