"""Stride and theoretical receptive field (engine.internals.receptive / trace) against values worked out by hand,
and against the real support of a cell's gradient on the input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from engine.internals.receptive import layer_tree, receptive_fields
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn


def _stack() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, 1, 1),  # k3 s1 p1
        nn.Conv2d(2, 2, 3, 2, 1),  # k3 s2 p1
        nn.AvgPool2d(2),  # k2 s2
        nn.Conv2d(2, 2, 5, 1, 4, dilation=2),  # k5 d2 p4
        nn.Conv2d(2, 1, (3, 5), 2, 0),  # k(3, 5) s2 p0: different per axis
    )


def test_hand_built_stack_matches_the_analytic_values():
    # by hand, per axis: RF_l = RF_(l-1) + (k-1)*d*jump_(l-1); jump_l = jump_(l-1)*s;
    # centre of cell 0: start_l = start_(l-1) + ((k-1)*d/2 - p)*jump_(l-1), input pixel 0 at 0.5
    expected = {  # name: (stride (y, x), receptive field (y, x), centre of cell 0 (y, x), out (h, w))
        "0": ((1, 1), (3, 3), (0.5, 0.5), (64, 64)),  # 1 + 2*1
        "1": ((2, 2), (5, 5), (0.5, 0.5), (32, 32)),  # 3 + 2*1
        "2": ((4, 4), (7, 7), (1.5, 1.5), (16, 16)),  # 5 + 1*2; start 0.5 + 0.5*2
        "3": ((4, 4), (39, 39), (1.5, 1.5), (16, 16)),  # 7 + 4*2*4; start + (4 - 4)*4
        "4": ((8, 8), (47, 55), (5.5, 9.5), (7, 6)),  # 39 + 2*4 | 39 + 4*4; start + 1*4 | + 2*4
    }
    infos = receptive_fields(_stack(), torch.zeros(1, 1, 64, 64))
    assert set(infos) == set(expected)
    for name, (stride, rf, c0, hw) in expected.items():
        i = infos[name]
        assert i.stride == stride and i.receptive_field == rf and i.center0 == c0, name
        assert i.out_shape[1:] == hw and i.rf_offset == (0.0, 0.0) and i.leaf and i.calls == 1


def test_the_field_is_exactly_where_the_gradient_of_a_cell_reaches():
    net = _stack()
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0)  # positive weights: nothing cancels
                m.bias.zero_()
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    out = net(x)
    info = receptive_fields(net, x.detach())["4"]
    for i, j in [(3, 3), (4, 3), (0, 0), (6, 5)]:  # two interior cells, two whose field crosses the border
        (g,) = torch.autograd.grad(out[0, 0, i, j], x, retain_graph=True)
        rows = np.flatnonzero(g[0, 0].abs().sum(1).numpy())
        cols = np.flatnonzero(g[0, 0].abs().sum(0).numpy())
        cy, cx = info.center0[0] + i * info.stride[0], info.center0[1] + j * info.stride[1]
        y0, y1 = cy - info.receptive_field[0] / 2, cy + info.receptive_field[0] / 2
        x0, x1 = cx - info.receptive_field[1] / 2, cx + info.receptive_field[1] / 2
        assert y0 == int(y0) and x0 == int(x0)  # fields start on pixel edges here
        # pixel c covers [c, c + 1): the field box, clipped to the image (zero padding has no gradient)
        assert rows.tolist() == list(range(max(0, int(y0)), min(64, int(y1))))
        assert cols.tolist() == list(range(max(0, int(x0)), min(64, int(x1))))


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1), nn.ReLU(), nn.Conv2d(1, 1, 3, 1, 1))
        self.short = nn.Conv2d(1, 1, 1, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


def test_branches_take_the_widest_path_not_the_execution_order():
    # executed in order body.0, body.2, short: a chain would count the shortcut's stride twice
    infos = receptive_fields(nn.Sequential(_Residual()), torch.zeros(1, 1, 32, 32))
    assert infos["0.short"].stride == (2, 2) and infos["0.short"].receptive_field == (1, 1)
    assert infos["0.body"].receptive_field == (7, 7)  # 1 + 2*1 + 2*2
    assert infos["0"].stride == (2, 2) and infos["0"].receptive_field == (7, 7) and infos["0"].center0 == (0.5, 0.5)


def test_tiny_detector_backbone_stages_and_fpn_levels():
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(min_size=128, max_size=256))
    model.train()
    layers = {i.name: i for i in layer_tree(model)}
    assert all(name.startswith("backbone") for name in layers)
    # stem: two 3x3 convs (stride 2, 1); each stage: 3x3 stride 2, 3x3 stride 1
    rf, jump = 1.0, 1.0
    for name in ["backbone.stem", "backbone.stages.0", "backbone.stages.1", "backbone.stages.2", "backbone.stages.3"]:
        rf, jump = rf + 2 * jump, jump * 2
        rf = rf + 2 * jump
        assert layers[name].stride == (jump, jump) and layers[name].receptive_field == (rf, rf), name
    assert layers["backbone.stages.2"].out_shape == (128, 8, 8) and layers["backbone.stem.0"].type == "Conv2d"
    assert layers["backbone.stages"].out_shape is None  # a ModuleList is never called
    assert model.training and all(m.training for m in model.modules())  # flags restored


def test_fpn_level_field_holds_the_real_gradient_support():
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(min_size=128, max_size=256))
    backbone = model.backbone.eval()
    x = torch.randn(1, 3, 128, 128, requires_grad=True)
    info = receptive_fields(backbone, x.detach())["fpn.layer_blocks.0"]
    assert info.stride == (4, 4) and info.rf_offset[0] < 0  # the top-down path looks up-left on average
    out = backbone(x)["0"]
    for i, j in [(16, 16), (17, 18)]:
        (g,) = torch.autograd.grad(out[0].sum(0)[i, j], x, retain_graph=True)
        rows = np.flatnonzero(g[0].abs().sum((0, 2)).numpy())
        cols = np.flatnonzero(g[0].abs().sum((0, 1)).numpy())
        cy = info.center0[0] + i * info.stride[0] + info.rf_offset[0]
        cx = info.center0[1] + j * info.stride[1] + info.rf_offset[1]
        half = np.asarray(info.receptive_field) / 2
        assert cy - half[0] <= rows[0] and rows[-1] + 1 <= cy + half[0]
        assert cx - half[1] <= cols[0] and cols[-1] + 1 <= cx + half[1]


@pytest.mark.parametrize("padding_mode", ["reflect"])
def test_explicit_padding_modes_are_followed(padding_mode: str):
    net = nn.Sequential(nn.Conv2d(1, 1, 3, 2, 1, padding_mode=padding_mode), nn.MaxPool2d(3, 2, 1))
    infos = receptive_fields(net, torch.zeros(1, 1, 16, 16))
    assert infos["0"].center0 == (0.5, 0.5) and infos["0"].receptive_field == (3, 3)
    assert infos["1"].stride == (4, 4) and infos["1"].receptive_field == (7, 7) and infos["1"].center0 == (0.5, 0.5)
