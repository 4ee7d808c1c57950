"""Faster R-CNN heads with switchable losses and per-step imbalance statistics.

torchvision calls ``RegionProposalNetwork.compute_loss`` and the module-level ``fastrcnn_loss``;
assigning a function to an instance is silently ignored, so the options live in subclasses that
``install_loss_heads`` swaps in (they reuse the original sub-modules: same parameters, same
state-dict keys, no random numbers drawn):

- ``FocalRPN`` — ``rpn_loss`` "ce": torchvision's BCE over the sampled anchors (256 per image, at
  most half foreground), the same ops in the same order (bit-identical losses). "focal": sigmoid
  focal loss over EVERY labelled anchor (label -1, between the IoU thresholds, is ignored), summed
  and divided by the number of foreground anchors of the batch (at least 1), as RetinaNet; the box
  term then covers every foreground anchor with the same normaliser. The objectness conv bias starts
  at -log((1 - pi) / pi), pi = 0.01 (the focal paper's prior: every anchor first predicts p = 0.01).
- ``LossRoIHeads`` — ``roi_loss`` "ce": torchvision's CE over the sampled RoIs (bit-identical).
  "focal": softmax focal over the same sample, alpha_t = 1 - alpha for background and alpha for
  objects (alpha -1: no weighting), mean weighted by alpha_t. "ohem" (Shrivastava et al. 2016):
  the sampler is bypassed, every proposal (+ the GT boxes) is scored in a no-grad pass (CE + box
  smooth L1 per RoI), per image the ``ohem_k`` largest losses are kept, and the loss with grad is
  computed on those only (mean CE; box loss sum / kept RoIs, torchvision's normalisation).
- Box regression in both: smooth L1 with ``box_loss_beta`` (torchvision hard-codes 1/9), through
  ``F.smooth_l1_loss`` as torchvision does: ``engine.losses.box.smooth_l1`` gives the same values, but its
  autograd graph rounds gradients differently, and the defaults must train bit-identically.

Eval mode runs torchvision's code unchanged. After a training forward ``rpn.last_stats`` and
``roi_heads.last_stats`` hold the step's numbers (``STAT_DOCS``); ``roi_heads.last_ohem`` holds the
kept indices and every RoI's loss. Boxes and deltas here are in the model's resized input frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from engine.losses.focal import sigmoid_focal_loss, softmax_focal_loss
from engine.losses.ohem import ohem_select

RPN_LOSSES = ("ce", "focal")
ROI_LOSSES = ("ce", "focal", "ohem")
PRIOR_PI = 0.01  # focal RPN: initial foreground probability of every anchor

STAT_DOCS: dict[str, str] = {
    "fg_anchors": "anchors labelled foreground, per image (all anchors, not the sample)",
    "bg_anchors": "anchors labelled background, per image",
    "easy_neg_share": "share of the RPN objectness loss from easy negatives (background, p_t > 0.5)",
    "roi_fg_fraction": "fraction of the RoIs in the classifier loss that are foreground",
    "roi_easy_neg_share": "share of the RoI classifier loss from easy negatives (background, p_t > 0.5)",
}


@dataclass(frozen=True)
class LossOptions:
    """The loss choices of a detector (``DetectorSpec`` fields of the same names); validated on creation."""

    rpn_loss: str = "ce"  # ce | focal
    roi_loss: str = "ce"  # ce | focal | ohem
    ohem_k: int = 128  # RoIs kept per image (roi_loss ohem)
    focal_alpha: float = 0.25  # weight of foreground in [0, 1]; -1 = no weighting
    focal_gamma: float = 2.0  # exponent of (1 - p_t), >= 0
    box_loss_beta: float = 1 / 9  # smooth L1 beta of both box terms, >= 0 (0 = L1)

    def __post_init__(self) -> None:
        if self.rpn_loss not in RPN_LOSSES:
            raise ValueError(f"rpn_loss {self.rpn_loss!r} is not one of {', '.join(RPN_LOSSES)}")
        if self.roi_loss not in ROI_LOSSES:
            raise ValueError(f"roi_loss {self.roi_loss!r} is not one of {', '.join(ROI_LOSSES)}")
        if isinstance(self.ohem_k, bool) or not isinstance(self.ohem_k, int) or self.ohem_k < 1:
            raise ValueError(f"ohem_k must be a whole number >= 1 (got {self.ohem_k!r})")
        a, g, b = self.focal_alpha, self.focal_gamma, self.box_loss_beta
        if not (math.isfinite(a) and (0 <= a <= 1 or a == -1)):
            raise ValueError(f"focal_alpha must be in [0, 1], or -1 for no weighting (got {a})")
        if not (math.isfinite(g) and g >= 0):
            raise ValueError(f"focal_gamma must be a finite number >= 0 (got {g})")
        if not (math.isfinite(b) and b >= 0):
            raise ValueError(f"box_loss_beta must be a finite number >= 0 (got {b})")


def prior_bias(pi: float = PRIOR_PI) -> float:
    """-log((1 - pi) / pi): the logit whose sigmoid is ``pi`` (-4.595 for pi = 0.01)."""
    return -math.log((1 - pi) / pi)


def easy_negative_share(per_sample: Tensor, negative: Tensor, p_t: Tensor) -> Tensor:
    """Share (0-d tensor in [0, 1]) of ``per_sample`` (N,) loss from negatives with ``p_t`` > 0.5; 0 if no loss."""
    total = per_sample.sum()
    easy = (per_sample * (negative & (p_t > 0.5))).sum()
    return torch.where(total > 0, easy / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))


class FocalRPN(RegionProposalNetwork):
    """torchvision's RPN with ``options.rpn_loss`` (ce | focal), ``box_loss_beta`` and ``last_stats``.

    ``compute_loss`` takes objectness (sum A, 1) logits and deltas (sum A, 4) of the whole batch,
    ``labels`` per image (A,) float 1 / 0 / -1 and regression targets per image (A, 4).
    """

    def __init__(self, *args: Any, options: LossOptions | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options or LossOptions()
        self.last_stats: dict[str, float] = {}
        if self.options.rpn_loss == "focal":
            with torch.no_grad():
                self.head.cls_logits.bias.fill_(prior_bias())

    @classmethod
    def like(cls, rpn: RegionProposalNetwork, options: LossOptions) -> FocalRPN:
        """A FocalRPN with ``rpn``'s anchor generator, head (same parameters) and every setting."""
        new = cls(rpn.anchor_generator, rpn.head, rpn.proposal_matcher.high_threshold,
                  rpn.proposal_matcher.low_threshold, rpn.fg_bg_sampler.batch_size_per_image,
                  rpn.fg_bg_sampler.positive_fraction, dict(rpn._pre_nms_top_n), dict(rpn._post_nms_top_n),
                  rpn.nms_thresh, rpn.score_thresh, options=options)
        new.box_coder, new.min_size = rpn.box_coder, rpn.min_size
        return new.train(rpn.training)

    def anchor_weights(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Focal weight alpha_t (1 - p_t)^gamma of each anchor: logits (A,), labels (A,) 1/0/-1 -> (A,) float,
        0 where ignored (-1). The loss of an anchor is this weight times its BCE (before the 1/num_fg)."""
        o = self.options
        target = labels.clamp(min=0).to(logits.dtype)
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        w = (1 - p_t) ** o.focal_gamma
        if o.focal_alpha >= 0:
            w = w * (o.focal_alpha * target + (1 - o.focal_alpha) * (1 - target))
        return torch.where(labels >= 0, w, torch.zeros_like(w))

    def compute_loss(self, objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
                     regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        beta = self.options.box_loss_beta
        if self.options.rpn_loss == "focal":
            objectness = objectness.flatten()
            all_labels = torch.cat(labels, dim=0)
            targets = torch.cat(regression_targets, dim=0)
            used = torch.where(all_labels >= 0)[0]
            pos = torch.where(all_labels == 1)[0]
            norm = max(1, pos.numel())
            per = sigmoid_focal_loss(objectness[used], all_labels[used], self.options.focal_alpha,
                                     self.options.focal_gamma, reduction="none")
            objectness_loss = per.sum() / norm
            box_loss = F.smooth_l1_loss(pred_bbox_deltas[pos], targets[pos], beta=beta, reduction="sum") / norm
        else:  # torchvision's compute_loss, op for op, with beta from the options
            sampled_pos, sampled_neg = self.fg_bg_sampler(labels)
            sampled_pos = torch.where(torch.cat(sampled_pos, dim=0))[0]
            sampled_neg = torch.where(torch.cat(sampled_neg, dim=0))[0]
            used = torch.cat([sampled_pos, sampled_neg], dim=0)
            objectness = objectness.flatten()
            all_labels = torch.cat(labels, dim=0)
            targets = torch.cat(regression_targets, dim=0)
            box_loss = F.smooth_l1_loss(pred_bbox_deltas[sampled_pos], targets[sampled_pos], beta=beta,
                                        reduction="sum") / used.numel()
            objectness_loss = F.binary_cross_entropy_with_logits(objectness[used], all_labels[used])
            per = None
        self.last_stats = self._stats(objectness.detach(), all_labels, used, per, len(labels))
        return objectness_loss, box_loss

    @torch.no_grad()
    def _stats(self, logits: Tensor, labels: Tensor, used: Tensor, per: Tensor | None, images: int) -> dict[str, float]:
        lab = labels[used]
        if per is None:
            per = F.binary_cross_entropy_with_logits(logits[used], lab, reduction="none")
        p = torch.sigmoid(logits[used])
        p_t = torch.where(lab == 1, p, 1 - p)
        values = torch.stack([(labels == 1).sum() / images, (labels == 0).sum() / images,
                              easy_negative_share(per.detach(), lab == 0, p_t)])
        return dict(zip(("fg_anchors", "bg_anchors", "easy_neg_share"), values.float().tolist()))


class LossRoIHeads(RoIHeads):
    """torchvision's box RoI heads with ``options.roi_loss`` (ce | focal | ohem), ``box_loss_beta`` and
    ``last_stats``; eval mode (and mask/keypoint heads) go through torchvision's ``forward`` unchanged."""

    def __init__(self, *args: Any, options: LossOptions | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.options = options or LossOptions()
        self.last_stats: dict[str, float] = {}
        self.last_ohem: dict[str, list[Tensor]] = {}

    @classmethod
    def like(cls, heads: RoIHeads, options: LossOptions) -> LossRoIHeads:
        """LossRoIHeads with ``heads``' pooler, box head, predictor (same parameters) and every setting."""
        new = cls(heads.box_roi_pool, heads.box_head, heads.box_predictor, heads.proposal_matcher.high_threshold,
                  heads.proposal_matcher.low_threshold, heads.fg_bg_sampler.batch_size_per_image,
                  heads.fg_bg_sampler.positive_fraction, heads.box_coder.weights, heads.score_thresh,
                  heads.nms_thresh, heads.detections_per_img, options=options)
        return new.train(heads.training)

    def subsample(self, labels: list[Tensor]) -> list[Tensor]:
        """torchvision's fg/bg sample; with OHEM every RoI (the hard ones are chosen by loss instead)."""
        if self.options.roi_loss == "ohem":
            return [torch.arange(len(lab), device=lab.device) for lab in labels]
        return super().subsample(labels)

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                targets: list[dict[str, Tensor]] | None = None) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if not self.training or self.has_mask() or self.has_keypoint():
            return super().forward(features, proposals, image_shapes, targets)
        for t in targets or []:
            if not t["boxes"].is_floating_point() or t["labels"].dtype != torch.int64:
                raise TypeError(f"target boxes must be float and labels int64, got {t['boxes'].dtype}, "
                                f"{t['labels'].dtype}")
        proposals, _, labels, regression_targets = self.select_training_samples(proposals, targets)
        if self.options.roi_loss == "ohem":
            losses = self.ohem_losses(features, proposals, image_shapes, labels, regression_targets)
            kept = [ohem_select(loss, self.options.ohem_k) for loss in losses]
            self.last_ohem = {"kept": kept, "loss": losses}
            proposals = [p[k] for p, k in zip(proposals, kept)]
            labels = [lab[k] for lab, k in zip(labels, kept)]
            regression_targets = [r[k] for r, k in zip(regression_targets, kept)]
        class_logits, box_regression = self._predict(features, proposals, image_shapes)
        loss_classifier, loss_box_reg = self.loss(class_logits, box_regression, labels, regression_targets)
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    def _predict(self, features: dict[str, Tensor], proposals: list[Tensor],
                 image_shapes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """Class logits (R, C) and box deltas (R, 4 C) of the RoIs ``proposals`` (per image (R_i, 4))."""
        box_features = self.box_roi_pool(features, proposals, image_shapes)
        box_features = self.box_head(box_features)
        return self.box_predictor(box_features)

    @torch.no_grad()
    def ohem_losses(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]],
                    labels: list[Tensor], regression_targets: list[Tensor]) -> list[Tensor]:
        """OHEM's read-only pass: per image the loss of every RoI (R_i,) float — CE plus, for foreground
        RoIs, the smooth L1 (beta) of its class's 4 deltas — without grad. The box head must hold no
        BatchNorm (TwoMLPHead: Linear layers only), since this pass runs in train mode."""
        logits, deltas = self._predict(features, proposals, image_shapes)
        lab = torch.cat(labels, dim=0)
        cls = F.cross_entropy(logits, lab, reduction="none")
        deltas = deltas.reshape(len(lab), -1, 4)[torch.arange(len(lab), device=lab.device), lab]
        box = F.smooth_l1_loss(deltas, torch.cat(regression_targets, dim=0), beta=self.options.box_loss_beta,
                               reduction="none").sum(1)
        per = cls + box * (lab > 0)
        return list(per.split([len(p) for p in proposals]))

    def loss(self, class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
             regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(classifier loss, box loss) of the RoIs in the loss: torchvision's ``fastrcnn_loss`` with the
        classifier term of ``options.roi_loss`` (ohem: CE on the kept RoIs) and smooth L1 with beta."""
        labels_all = torch.cat(labels, dim=0)
        targets = torch.cat(regression_targets, dim=0)
        alpha = None
        if self.options.roi_loss == "focal":
            a = self.options.focal_alpha
            if a >= 0:
                alpha = torch.full((class_logits.shape[1],), a, dtype=class_logits.dtype, device=class_logits.device)
                alpha[0] = 1 - a
            classification_loss = softmax_focal_loss(class_logits, labels_all, alpha, self.options.focal_gamma)
        else:
            classification_loss = F.cross_entropy(class_logits, labels_all)
        pos = torch.where(labels_all > 0)[0]
        labels_pos = labels_all[pos]
        n = class_logits.shape[0]
        box_regression = box_regression.reshape(n, box_regression.size(-1) // 4, 4)
        box_loss = F.smooth_l1_loss(box_regression[pos, labels_pos], targets[pos], beta=self.options.box_loss_beta,
                                    reduction="sum")
        box_loss = box_loss / labels_all.numel()
        self.last_stats = self._stats(class_logits.detach(), labels_all, alpha)
        return classification_loss, box_loss

    @torch.no_grad()
    def _stats(self, logits: Tensor, labels: Tensor, alpha: Tensor | None) -> dict[str, float]:
        if self.options.roi_loss == "focal":
            per = softmax_focal_loss(logits, labels, alpha, self.options.focal_gamma, reduction="none")
        else:
            per = F.cross_entropy(logits, labels, reduction="none")
        p_t = F.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        fg = (labels > 0).float().mean() if labels.numel() else torch.zeros((), device=logits.device)
        values = torch.stack([fg, easy_negative_share(per, labels == 0, p_t)])
        return dict(zip(("roi_fg_fraction", "roi_easy_neg_share"), values.float().tolist()))


def install_loss_heads(model: torch.nn.Module, options: LossOptions) -> None:
    """Swap ``model.rpn`` / ``model.roi_heads`` (a torchvision ``FasterRCNN``) for FocalRPN / LossRoIHeads
    built around the same sub-modules (no new parameters; the focal RPN re-initialises its objectness bias)."""
    model.rpn = FocalRPN.like(model.rpn, options)
    model.roi_heads = LossRoIHeads.like(model.roi_heads, options)


def step_stats(model: torch.nn.Module) -> dict[str, float]:
    """The last training forward's numbers (``STAT_DOCS`` keys present so far) of a model with these heads."""
    out: dict[str, float] = {}
    for part in ("rpn", "roi_heads"):
        out.update(getattr(getattr(model, part, None), "last_stats", None) or {})
    return out
