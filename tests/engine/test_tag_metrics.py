"""Tag metrics (AP as scikit-learn defines it, mAP, F1, thresholds) and the tagger network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.eval.tags import average_precision, f1_scores, multilabel_map, tag_metrics, tune_thresholds
from engine.models.tagger import TAGGER_BACKBONES, TaggerSpec, build_tagger, choose_mode, tagger_loss


def _sklearn_ap(scores: np.ndarray, truth: np.ndarray) -> float:
    """scikit-learn's average_precision_score rewritten from its definition, with plain loops:
    one threshold per distinct score, the PR curve reversed and (P=1, R=0) appended,
    AP = -sum(diff(recall) * precision[:-1])."""
    precision, recall = [], []
    pos = int(truth.sum())
    for t in sorted(set(scores.tolist()), reverse=True):
        pred = scores >= t
        tp = int((pred & truth).sum())
        precision.append(tp / int(pred.sum()))
        recall.append(tp / pos)
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def test_average_precision_by_hand_with_ties():
    scores = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.6])
    truth = np.array([1, 0, 1, 1, 0, 1], bool)
    # thresholds 0.9, 0.8, 0.7, 0.6 -> P = 1, 2/3, 3/4, 4/6 at R = 1/4, 2/4, 3/4, 1
    assert average_precision(scores, truth) == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 6) / 4)
    assert average_precision(scores, truth) == pytest.approx(37 / 48)
    assert average_precision(scores[::-1], truth[::-1]) == pytest.approx(37 / 48)  # order of ties is irrelevant
    assert np.isnan(average_precision(scores, np.zeros(6, bool)))
    assert average_precision(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_average_precision_equals_sklearn_formula(seed):
    rng = np.random.default_rng(seed)
    n = 40
    truth = rng.random(n) < 0.35
    truth[0] = True
    scores = np.round(rng.random(n) * 0.5 + 0.3 * truth, 1)  # coarse rounding -> many ties
    assert average_precision(scores, truth) == pytest.approx(_sklearn_ap(scores, truth), abs=1e-12)


def test_multilabel_map_skips_tags_without_positives():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.2], [0.7, 0.6, 0.1]])
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], bool)
    ap1 = average_precision(scores[:, 1], truth[:, 1])
    assert ap1 == pytest.approx(1.0)
    assert multilabel_map(scores, truth) == pytest.approx((1.0 + ap1) / 2)
    assert np.isnan(multilabel_map(scores, np.zeros_like(truth)))


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    tp = (pred & truth).sum()
    return 2 * tp / (2 * tp + (pred & ~truth).sum() + (~pred & truth).sum())


def test_tune_thresholds_picks_the_f1_optimum():
    s0 = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    t0 = np.array([1, 1, 0, 1, 0, 0], bool)
    # F1 of the top-k: 0.5, 0.8, 0.667, 0.857 (k=4), 0.75, 0.667 -> cut between 0.6 and 0.5
    scores = np.c_[s0, np.linspace(0.1, 0.6, 6)]
    truth = np.c_[t0, np.zeros(6, bool)]
    thr = tune_thresholds(scores, truth)
    assert thr[0] == pytest.approx(0.55)
    assert not (scores[:, 1] >= thr[1]).any()  # no positives: predict none
    best = max(_f1(s0 >= t, t0) for t in s0)
    assert _f1(s0 >= thr[0], t0) == pytest.approx(best) == pytest.approx(6 / 7)
    res = f1_scores(scores, truth, thr, names=["a", "b"])
    assert res["per_tag"]["a"]["f1"] == pytest.approx(6 / 7)
    assert res["per_tag"]["a"]["precision"] == pytest.approx(3 / 4) and res["per_tag"]["a"]["recall"] == 1.0
    assert res["per_tag"]["b"] == {"f1": 0.0, "precision": 0.0, "recall": 0.0, "support": 0}
    assert res["f1_macro"] == pytest.approx(6 / 7)  # tags with positives only
    assert res["f1_micro"] == pytest.approx(6 / 7)
    half = f1_scores(scores, truth, [0.5, 0.5])
    assert half["f1_micro"] == pytest.approx(2 * 3 / (2 * 3 + 4))  # FP: 0.5 on tag 0, 0.5 and 0.6 on tag 1
    m = tag_metrics(scores, truth, thr)
    assert set(m) == {"mAP", "f1_macro", "f1_micro"}


def test_spec_round_trip_and_validation():
    assert TaggerSpec.from_dict({}) == TaggerSpec()
    spec = TaggerSpec(backbone="resnet18", num_tags=3, pos_weight=[1.0, 2.0, 3.0], thresholds=[0.4, 0.5, 0.6])
    assert TaggerSpec.from_dict(spec.to_dict()) == spec
    for bad, match in ((TaggerSpec(backbone="vgg"), "backbone"),
                       (TaggerSpec(num_tags=2, pos_weight=[1.0]), "pos_weight"),
                       (TaggerSpec(num_tags=2, mode="multiclass", loss="focal"), "focal"),
                       (TaggerSpec(num_tags=1, mode="multiclass"), "at least 2 tags")):
        with pytest.raises(ValueError, match=match):
            bad.validate()
    with pytest.raises(ValueError, match="unknown tagger spec keys"):
        TaggerSpec.from_dict({"colour": 1})


def test_choose_mode():
    assert choose_mode([{0}, {1}, {2}, {0}])[0] == "multiclass"
    mode, reason = choose_mode([{0}, {0, 1}, {1}])
    assert mode == "multilabel" and "1 of 3 images have more than one tag" in reason
    assert choose_mode([{0}, set()])[0] == "multilabel"
    assert choose_mode([{0}, {0}])[0] == "multilabel"
    assert choose_mode([])[0] == "multilabel"


@pytest.mark.parametrize("backbone", TAGGER_BACKBONES)
def test_tagger_output_shapes(backbone):
    torch.manual_seed(0)
    model, notices = build_tagger(TaggerSpec(backbone=backbone, num_tags=5, input_size=64))
    assert notices
    with torch.no_grad():
        out = model.eval()(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 5) and out.dtype == torch.float32


def test_tagger_losses():
    logits = torch.zeros(4, 3)
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    bce = tagger_loss(logits, targets, TaggerSpec(num_tags=3))
    assert set(bce) == {"loss_bce"} and bce["loss_bce"].item() == pytest.approx(np.log(2))
    focal = tagger_loss(logits, targets, TaggerSpec(num_tags=3, loss="focal"))
    assert set(focal) == {"loss_focal"} and focal["loss_focal"].item() == pytest.approx(0.25 * np.log(2))
    weighted = tagger_loss(logits, targets, TaggerSpec(num_tags=3, pos_weight=[3.0, 3.0, 3.0]))
    assert weighted["loss_bce"].item() == pytest.approx(np.log(2) * (4 * 3 + 8) / 12)
    ce = tagger_loss(logits, targets, TaggerSpec(num_tags=3, mode="multiclass"))
    assert set(ce) == {"loss_ce"} and ce["loss_ce"].item() == pytest.approx(np.log(3))


@pytest.mark.parametrize("mode", ["multilabel", "multiclass"])
def test_tiny_tagger_overfits_a_tiny_batch(mode):
    torch.manual_seed(0)
    x = torch.rand(8, 3, 32, 32)
    if mode == "multiclass":
        y = torch.nn.functional.one_hot(torch.arange(8) % 3, 3).float()
    else:
        y = (torch.rand(8, 3) < 0.5).float()
    spec = TaggerSpec(num_tags=3, input_size=32, mode=mode)
    model, _ = build_tagger(spec)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(80):
        loss = sum(tagger_loss(model(x), y, spec).values())
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    with torch.no_grad():
        logits = model.train()(x)
    if mode == "multiclass":
        assert torch.equal(logits.argmax(1), y.argmax(1))
    else:
        assert torch.equal((logits > 0).float(), y)
