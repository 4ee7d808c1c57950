"""Faster R-CNN loss options (engine.models.frcnn_heads): focal RPN, focal / OHEM RoI heads, smooth L1 beta,
per-step imbalance numbers, config -> spec -> checkpoint, the X-ray's loss-option arrays."""

from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torchvision.models.detection.rpn import concat_box_prediction_layers

import engine.models.faster_rcnn as frcnn
from engine.cli import CliError
from engine.cli.train import add_train_arguments, config_from_args
from engine.config import ConfigError, TrainConfig
from engine.data.dataset import DetectionDataset, collate, make_label_map, snapshot_split
from engine.events import StepLosses
from engine.jobs import CancelToken, Collector
from engine.models.faster_rcnn import DetectorSpec, build_faster_rcnn
from engine.models.frcnn_heads import FocalRPN, LossRoIHeads, prior_bias
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.checkpoint import load_checkpoint, load_model
from engine.train.trainer import Hook
from engine.xray.capture import OPTIONAL_KEYS, XrayCapture, capture

STATS = {"stat_fg_anchors", "stat_bg_anchors", "stat_easy_neg_share", "stat_roi_fg_fraction", "stat_roi_easy_neg_share"}


@pytest.fixture(scope="module")
def batch(demo_project) -> tuple[list[torch.Tensor], list[dict], int]:
    """Two annotated training images of the small demo and the number of model classes."""
    with Store(demo_project) as store:
        lm = make_label_map(store)
        recs = [r for r in snapshot_split(store, "train") if r.annotations][:2]
    ims, ts = collate([DetectionDataset(recs, lm)[i] for i in range(2)])
    return [im.as_subclass(torch.Tensor) for im in ims], [{k: v.as_subclass(torch.Tensor) if isinstance(v, torch.Tensor)
                                                            else v for k, v in t.items()} for t in ts], len(lm) + 1


def _model(num_classes: int, **options: object) -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=num_classes, min_size=128, max_size=192,
                                              box_batch_size_per_image=128, **options))
    return model.train()


def _stage(model: torch.nn.Module, ims: list, ts: list) -> tuple:
    """The model's own transform and backbone in train mode: (image list, targets, features)."""
    images, targets = model.transform([im.clone() for im in ims], copy.deepcopy(ts))
    return images, targets, model.backbone(images.tensors)


def test_default_heads_reproduce_torchvision_bit_for_bit(batch, monkeypatch) -> None:
    ims, ts, nc = batch
    ours = _model(nc)
    assert isinstance(ours.rpn, FocalRPN) and isinstance(ours.roi_heads, LossRoIHeads)
    monkeypatch.setattr(frcnn, "install_loss_heads", lambda model, options: None)
    stock = _model(nc)
    assert type(stock.rpn).__name__ == "RegionProposalNetwork" and type(stock.roi_heads).__name__ == "RoIHeads"
    assert ours.state_dict().keys() == stock.state_dict().keys()
    for k, v in stock.state_dict().items():
        assert torch.equal(v, ours.state_dict()[k]), k  # installing the heads draws no random numbers
    results = []
    for m in (stock, ours):
        torch.manual_seed(3)
        losses = m([im.clone() for im in ims], copy.deepcopy(ts))
        sum(losses.values()).backward()
        results.append((losses, [p.grad.clone() for p in m.parameters() if p.grad is not None]))
    (a, ga), (b, gb) = results
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len(ga) == len(gb) and all(torch.equal(x, y) for x, y in zip(ga, gb))


def test_focal_rpn_objectness_equals_torchvision_sigmoid_focal_loss_over_all_labelled_anchors(batch) -> None:
    ims, ts, nc = batch
    model = _model(nc, rpn_loss="focal", focal_alpha=0.3, focal_gamma=1.5, box_loss_beta=0.2)
    rpn = model.rpn
    images, targets, features = _stage(model, ims, ts)
    feats = list(features.values())
    obj, deltas = concat_box_prediction_layers(*rpn.head(feats))
    anchors = rpn.anchor_generator(images, feats)
    labels, matched = rpn.assign_targets_to_anchors(anchors, targets)
    reg = torch.cat(rpn.box_coder.encode(matched, anchors))
    lab = torch.cat(labels)
    assert (lab == -1).any() and (lab == 1).any(), "the batch should have ignored and foreground anchors"
    valid, pos = lab >= 0, lab == 1
    n_pos = max(1, int(pos.sum()))
    hand_obj = torchvision.ops.sigmoid_focal_loss(obj.flatten()[valid], lab[valid], 0.3, 1.5, "sum") / n_pos
    hand_box = F.smooth_l1_loss(deltas[pos], reg[pos], beta=0.2, reduction="sum") / n_pos
    _, losses = rpn(images, features, targets)
    torch.testing.assert_close(losses["loss_objectness"], hand_obj)
    torch.testing.assert_close(losses["loss_rpn_box_reg"], hand_box)
    # the numbers of the step: every anchor counted, not a sample
    stats = rpn.last_stats
    assert stats["fg_anchors"] == pytest.approx(float(pos.sum()) / 2)
    assert stats["bg_anchors"] == pytest.approx(float((lab == 0).sum()) / 2)
    assert 0 <= stats["easy_neg_share"] <= 1


def test_focal_rpn_starts_from_the_prior_bias(batch) -> None:
    nc = batch[2]
    bias = _model(nc, rpn_loss="focal").rpn.head.cls_logits.bias
    assert prior_bias() == pytest.approx(-math.log(99))
    torch.testing.assert_close(bias, torch.full_like(bias, -math.log((1 - 0.01) / 0.01)))
    assert torch.sigmoid(bias).mean().item() == pytest.approx(0.01, rel=1e-4)
    assert not torch.allclose(_model(nc).rpn.head.cls_logits.bias, bias)  # only the focal RPN


def test_ohem_keeps_exactly_the_top_k_and_gradients_flow_only_through_them(batch) -> None:
    ims, ts, nc = batch
    k = 8
    model = _model(nc, roi_loss="ohem", ohem_k=k)
    heads = model.roi_heads
    images, targets, features = _stage(model, ims, ts)
    proposals, _ = model.rpn(images, features, targets)
    features = {n: f.detach().requires_grad_() for n, f in features.items()}
    sizes = images.image_sizes
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = heads.box_predictor.register_forward_hook(lambda m, a, out: calls.append((a[0], out[0])))
    _, losses = heads(features, [p.clone() for p in proposals], sizes, targets)
    hook.remove()
    # two passes: every RoI scored without grad, then only the kept ones with grad
    assert len(calls) == 2
    (_, logits_all), (_, logits_kept) = calls
    assert not logits_all.requires_grad and logits_kept.requires_grad and len(logits_kept) == 2 * k
    kept, per_roi = heads.last_ohem["kept"], heads.last_ohem["loss"]
    # by hand: the sampler is bypassed (every proposal + GT), loss = CE + smooth L1 of foreground RoIs
    props, _, labels, reg = heads.select_training_samples([p.clone() for p in proposals], targets)
    assert [len(p) for p in props] == [len(p) + len(t["boxes"]) for p, t in zip(proposals, targets)]
    with torch.no_grad():
        logits, deltas = heads.box_predictor(heads.box_head(heads.box_roi_pool(features, props, sizes)))
    lab, tgt = torch.cat(labels), torch.cat(reg)
    d = deltas.reshape(len(lab), -1, 4)[torch.arange(len(lab)), lab]
    hand = F.cross_entropy(logits, lab, reduction="none") + F.smooth_l1_loss(
        d, tgt, beta=1 / 9, reduction="none").sum(1) * (lab > 0)
    for i, h in enumerate(hand.split([len(p) for p in props])):
        torch.testing.assert_close(per_roi[i], h)
        assert torch.equal(kept[i], torch.topk(h, k).indices)
    # the loss and its gradient are those of a loss built from the kept RoIs alone
    used = [features[n] for n in heads.box_roi_pool.featmap_names]  # the pooler's levels
    g_ohem = torch.autograd.grad(losses["loss_classifier"] + losses["loss_box_reg"], used)
    kp = [p[i] for p, i in zip(props, kept)]
    kl = torch.cat([lb[i] for lb, i in zip(labels, kept)])
    kt = torch.cat([r[i] for r, i in zip(reg, kept)])
    lg, dl = heads.box_predictor(heads.box_head(heads.box_roi_pool(features, kp, sizes)))
    pos = torch.where(kl > 0)[0]
    manual = F.cross_entropy(lg, kl) + F.smooth_l1_loss(dl.reshape(len(kl), -1, 4)[pos, kl[pos]], kt[pos],
                                                        beta=1 / 9, reduction="sum") / len(kl)
    g_manual = torch.autograd.grad(manual, used)
    for a, b in zip(g_ohem, g_manual):
        torch.testing.assert_close(a, b)
    assert heads.last_stats["roi_fg_fraction"] == pytest.approx(float((kl > 0).float().mean()))


def test_roi_focal_is_softmax_focal_with_alpha_for_objects(batch) -> None:
    nc = batch[2]
    heads = _model(nc, roi_loss="focal", focal_alpha=0.25, focal_gamma=2.0).roi_heads
    g = torch.Generator().manual_seed(0)
    logits, deltas = torch.randn(20, nc, generator=g), torch.randn(20, 4 * nc, generator=g)
    labels = [torch.randint(0, nc, (12,), generator=g), torch.randint(0, nc, (8,), generator=g)]
    targets = [torch.randn(12, 4, generator=g), torch.randn(8, 4, generator=g)]
    cls, _ = heads.loss(logits, deltas, labels, targets)
    lab = torch.cat(labels)
    p_t = F.softmax(logits, 1)[torch.arange(20), lab]
    a_t = torch.where(lab == 0, 0.75, 0.25)
    hand = (-a_t * (1 - p_t) ** 2 * torch.log(p_t)).sum() / a_t.sum()
    torch.testing.assert_close(cls, hand)


@pytest.mark.parametrize("beta", [0.0, 1 / 9, 0.5, 2.0])
def test_smooth_l1_beta_reaches_both_box_losses(batch, beta: float) -> None:
    nc = batch[2]
    model = _model(nc, box_loss_beta=beta)
    g = torch.Generator().manual_seed(1)
    # RoI heads: box loss over the foreground RoIs' class deltas, / all RoIs
    deltas = torch.randn(20, 4 * nc, generator=g)
    labels = [torch.randint(0, nc, (20,), generator=g)]
    targets = [torch.randn(20, 4, generator=g)]
    _, box = model.roi_heads.loss(torch.randn(20, nc, generator=g), deltas, labels, targets)
    lab = labels[0]
    pos = torch.where(lab > 0)[0]
    hand = F.smooth_l1_loss(deltas.reshape(20, -1, 4)[pos, lab[pos]], targets[0][pos], beta=beta, reduction="sum") / 20
    torch.testing.assert_close(box, hand)
    # RPN: box loss over the sampled positive anchors, / sampled anchors (torchvision's)
    lab = (torch.rand(600, generator=g) < 0.05).float()
    lab[:50] = -1
    obj, d, t = torch.randn(600, 1, generator=g), torch.randn(600, 4, generator=g), torch.randn(600, 4, generator=g)
    torch.manual_seed(5)
    _, rpn_box = model.rpn.compute_loss(obj, d, [lab], [t])
    torch.manual_seed(5)
    sp, sn = model.rpn.fg_bg_sampler([lab])
    sp, n = torch.where(sp[0])[0], int(sp[0].sum() + sn[0].sum())
    torch.testing.assert_close(rpn_box, F.smooth_l1_loss(d[sp], t[sp], beta=beta, reduction="sum") / n)


def test_options_are_validated_with_one_line_errors() -> None:
    for bad, match in [(dict(rpn_loss="bce"), "rpn_loss 'bce' is not one of ce, focal"),
                       (dict(roi_loss="hard"), "roi_loss 'hard' is not one of ce, focal, ohem"),
                       (dict(ohem_k=0), "ohem_k"), (dict(focal_alpha=1.5), "focal_alpha"),
                       (dict(focal_gamma=-1.0), "focal_gamma"), (dict(box_loss_beta=-0.1), "box_loss_beta")]:
        with pytest.raises(ConfigError, match=match) as e:
            TrainConfig(**bad).validate()
        assert "\n" not in str(e.value)
        with pytest.raises(ValueError, match=match.split()[0]) as e:
            DetectorSpec(**bad)
        assert "\n" not in str(e.value)
    TrainConfig(focal_alpha=-1, focal_gamma=0.0, box_loss_beta=0.0).validate()
    # from_dict: old checkpoints without the new keys get the defaults
    assert DetectorSpec.from_dict({}) == DetectorSpec()
    spec = DetectorSpec(rpn_loss="focal", roi_loss="ohem", ohem_k=64, focal_alpha=0.5, focal_gamma=1.0,
                        box_loss_beta=0.0)
    assert DetectorSpec.from_dict(spec.to_dict()) == spec


def test_cli_has_a_flag_per_option() -> None:
    p = argparse.ArgumentParser()
    add_train_arguments(p)
    text = p.format_help()
    for flag in ("--rpn-loss", "--roi-loss", "--ohem-k", "--focal-alpha", "--focal-gamma", "--box-loss-beta"):
        assert flag in text
    args = p.parse_args(["--project", "P", "--rpn-loss", "focal", "--roi-loss", "ohem", "--ohem-k", "32",
                         "--focal-alpha", "0.5", "--focal-gamma", "1", "--box-loss-beta", "0.25",
                         "--model", "yolo_v1", "--extra", "yolo_class_loss=focal"])
    cfg = config_from_args(args)
    assert (cfg.rpn_loss, cfg.roi_loss, cfg.ohem_k, cfg.focal_alpha, cfg.focal_gamma, cfg.box_loss_beta) == (
        "focal", "ohem", 32, 0.5, 1.0, 0.25)
    assert cfg.extra == {"yolo_class_loss": "focal"}  # the YOLOv1 class term (engine.tasks.yolo_v1)
    with pytest.raises(CliError, match="roi_loss"):
        config_from_args(p.parse_args(["--project", "P", "--roi-loss", "hard"]))


class _KeepModel(Hook):
    def after_train(self, s) -> None:  # noqa: ANN001
        self.model = copy.deepcopy(s.model).eval()


@pytest.mark.parametrize("options", [dict(rpn_loss="focal", roi_loss="focal", focal_alpha=0.5),
                                     dict(roi_loss="ohem", ohem_k=32, box_loss_beta=0.25)],
                         ids=["focal", "ohem"])
def test_short_run_trains_records_the_options_and_rebuilds_the_same_model(demo_copy, options) -> None:
    from engine.train.job import train_job

    cfg = TrainConfig(project=str(demo_copy), overfit_one_batch=True, overfit_steps=15, batch_size=2,
                      optimizer="sgd", lr=0.02, warmup_steps=3, min_size=128, max_size=192, device="cpu", **options)
    sink, keep = Collector(), _KeepModel()
    result = train_job(cfg.to_dict(), sink, CancelToken(), hooks=[keep])
    steps = sink.of(StepLosses)
    assert len(steps) == 15
    first = steps[0].losses["loss"]
    assert min(e.losses["loss"] for e in steps[-5:]) < 0.8 * first, [round(e.losses["loss"], 3) for e in steps]
    for e in steps:  # imbalance numbers streamed next to the losses, never part of the total
        assert set(e.losses) >= STATS
        assert e.losses["loss"] == pytest.approx(sum(v for k, v in e.losses.items() if k.startswith("loss_")))
    with Store(demo_copy) as store:
        run_cfg = store.run(result["run_id"]).config
        assert any(name.startswith("stat_") for _, _, _, name, _ in store.metrics(result["run_id"]))
    ckpt = load_checkpoint(result["last_checkpoint"])
    for k, v in options.items():
        assert run_cfg[k] == v and ckpt["config"][k] == v and ckpt["spec"][k] == v, k
    task, model, spec, _, _ = load_model(result["last_checkpoint"])
    assert spec.loss_options() == model.rpn.options == model.roi_heads.options
    assert all(getattr(spec, k) == v for k, v in options.items())
    if spec.rpn_loss == "focal":
        assert isinstance(model.rpn, FocalRPN)
    with Store(demo_copy) as store:
        img = read_rgb(next(r for r in snapshot_split(store, "train") if r.annotations).path)
    a = task.predict(keep.model, [img], torch.device("cpu"))[0]
    b = task.predict(model, [img], torch.device("cpu"))[0]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_xray_shows_what_focal_and_ohem_do_to_the_sample(batch, demo_project) -> None:
    ims, ts, nc = batch
    img = (ims[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    gt, labels = ts[0]["boxes"].numpy(), ts[0]["labels"].numpy()
    plain = capture(_model(nc).eval(), img, gt, labels)
    assert not set(OPTIONAL_KEYS) & set(plain)
    assert plain["anchor_sampled"].sum() <= 256
    model = _model(nc, rpn_loss="focal", roi_loss="ohem", ohem_k=16).eval()
    a = capture(model, img, gt, labels)
    lab, w = a["anchor_label"], a["anchor_weights"]
    assert w.shape == lab.shape and w.dtype == np.float32
    assert (w[lab == -1] == 0).all() and (w[lab >= 0] > 0).all()
    np.testing.assert_array_equal(a["anchor_sampled"], lab >= 0)  # every labelled anchor is in the loss
    # OHEM: the RoI layer holds every candidate (no sampler), each with its loss; the kept are the 16 hardest
    assert a["ohem_loss"].shape == a["roi_label"].shape == (len(a["rois"]),) and len(a["rois"]) > 16
    assert a["ohem_kept"].dtype == np.int64 and len(a["ohem_kept"]) == 16
    np.testing.assert_array_equal(a["ohem_loss"][a["ohem_kept"]], -np.sort(-a["ohem_loss"])[:16])
    cap = XrayCapture(a)
    assert set(OPTIONAL_KEYS) <= set(cap.arrays)
