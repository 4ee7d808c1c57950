"""Image tagger: a CNN backbone + linear head giving one logit per tag.

Input (N, 3, H, W) float32 RGB in [0, 1] (resized by the data pipeline to ``input_size``; the module
normalises with ImageNet mean/std itself); output (N, T) float32 logits. ``multilabel``: independent
sigmoids, trained with BCE or sigmoid focal loss. ``multiclass``: one softmax over the T tags (every
image has exactly one tag), trained with cross-entropy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models
from torchvision.ops import sigmoid_focal_loss

from engine.config import strict_from_dict
from engine.models.faster_rcnn import hub_checkpoint_dir, local_weights_file

TAGGER_BACKBONES = ("tiny", "resnet18", "mobilenet_v3_small")
MODES = ("multilabel", "multiclass")
LOSSES = ("bce", "focal")
FOCAL_GAMMA = 2.0


@dataclass
class TaggerSpec:
    """Everything needed to rebuild a tagger; saved next to its weights. ``thresholds``: per-tag
    probability thresholds (multilabel), e.g. tuned on val; ``pos_weight``: per-tag weight of positives."""

    backbone: str = "tiny"
    num_tags: int = 1
    input_size: int = 128
    mode: str = "multilabel"
    loss: str = "bce"
    pos_weight: list[float] | None = None
    pretrained: bool = False
    thresholds: list[float] | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> TaggerSpec:
        d = dict(d)
        for key in ("pos_weight", "thresholds"):
            if d.get(key) is not None:
                d[key] = [float(v) for v in d[key]]
        return strict_from_dict(TaggerSpec, d, "tagger spec keys")

    def validate(self) -> None:
        """Raise ValueError with a one-line reason if the spec cannot be built or trained."""
        if self.backbone not in TAGGER_BACKBONES:
            raise ValueError(f"unknown tagger backbone {self.backbone!r}; expected one of {TAGGER_BACKBONES}")
        if self.mode not in MODES:
            raise ValueError(f"unknown tagger mode {self.mode!r}; expected one of {MODES}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown tagger loss {self.loss!r}; expected one of {LOSSES}")
        if self.num_tags < 1:
            raise ValueError(f"num_tags must be at least 1, got {self.num_tags}")
        if self.mode == "multiclass" and self.num_tags < 2:
            raise ValueError("multiclass mode needs at least 2 tags; use multilabel for a single tag")
        if self.mode == "multiclass" and self.loss == "focal":
            raise ValueError("focal loss is sigmoid-based: use mode 'multilabel' or loss 'bce'")
        if self.input_size < 32:
            raise ValueError(f"input_size must be at least 32 px, got {self.input_size}")
        for key in ("pos_weight", "thresholds"):
            v = getattr(self, key)
            if v is not None and len(v) != self.num_tags:
                raise ValueError(f"{key} has {len(v)} values for {self.num_tags} tags")
            if v is not None and not all(math.isfinite(x) for x in v):
                raise ValueError(f"{key} must be finite")
        if self.pos_weight is not None and min(self.pos_weight) <= 0:
            raise ValueError("pos_weight values must be positive")


class TinyTagger(nn.Module):
    """4 stride-2 conv blocks (16-32-64-128 channels, BN, ReLU), global max and average pool
    concatenated (256), linear head.

    Max pooling answers "is it anywhere in the picture" (most tags); average pooling keeps how much
    of it there is (tags like the demo's ``crowded``). On the 300-image demo, average pooling alone
    did not learn the shape tags (circle AP 0.71 = its frequency after 2 CPU minutes); max or
    max + average pooling did (circle AP 0.80-0.85; bench/bench_tagger_quality.py)."""

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in (16, 32, 64, 128):
            layers += [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * cin, num_tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        return self.head(torch.cat([F.adaptive_max_pool2d(f, 1), F.adaptive_avg_pool2d(f, 1)], 1).flatten(1))


class Tagger(nn.Module):
    """Normalise (N, 3, H, W) [0, 1] input with ImageNet statistics, run ``net``: (N, T) logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)


def build_tagger(spec: TaggerSpec) -> tuple[nn.Module, list[str]]:
    """Build the tagger; returns it and notices for the user (e.g. whether pretrained weights were used)."""
    spec.validate()
    notices: list[str] = []
    if spec.backbone == "tiny":
        notices.append("tiny tagger: training from scratch (no pretrained weights exist for it)")
        return Tagger(TinyTagger(spec.num_tags)), notices
    if spec.backbone == "resnet18":
        net, weights, head = models.resnet18(weights=None), models.ResNet18_Weights.DEFAULT, "fc"
    else:
        net, weights, head = (models.mobilenet_v3_small(weights=None), models.MobileNet_V3_Small_Weights.DEFAULT,
                              "classifier.3")
    local = local_weights_file(weights.url) if spec.pretrained else None
    if local is not None:
        state = torch.load(local, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
        notices.append(f"loaded pretrained weights from {local} (the tag head is trained anew)")
    elif spec.pretrained:
        notices.append(f"{spec.backbone}: no local pretrained weights found in {hub_checkpoint_dir()}; "
                       "training from scratch")
    else:
        notices.append(f"{spec.backbone}: training from scratch")
    if head == "fc":
        net.fc = nn.Linear(net.fc.in_features, spec.num_tags)
    else:
        net.classifier[3] = nn.Linear(net.classifier[3].in_features, spec.num_tags)
    return Tagger(net), notices


def choose_mode(tag_sets: list[set[int]]) -> tuple[str, str]:
    """``(mode, reason)`` from each labelled image's tag set: multiclass when every image has exactly
    one tag and there are at least 2 tags in use, else multilabel; the reason is a sentence for the user."""
    n = len(tag_sets)
    if n == 0:
        return "multilabel", "no tagged images yet: multilabel (each tag a yes/no question)"
    counts = [len(s) for s in tag_sets]
    several = sum(c > 1 for c in counts)
    none = sum(c == 0 for c in counts)
    used = set().union(*tag_sets)
    if several:
        return "multilabel", f"multilabel: {several} of {n} images have more than one tag"
    if none:
        return "multilabel", f"multilabel: {none} of {n} images have no tag (an image may be none of the tags)"
    if len(used) < 2:
        return "multilabel", "multilabel: only one tag is used, so it is a yes/no question"
    return "multiclass", f"multiclass: each of the {n} images has exactly one of {len(used)} tags"


def tag_probabilities(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """(N, T) logits -> (N, T) probabilities: sigmoid (multilabel) or softmax over tags (multiclass)."""
    return torch.softmax(logits, 1) if mode == "multiclass" else torch.sigmoid(logits)


def tagger_loss(logits: torch.Tensor, targets: torch.Tensor, spec: TaggerSpec) -> dict[str, torch.Tensor]:
    """``logits`` (N, T) float, ``targets`` (N, T) float in {0, 1} (multiclass: one-hot rows, soft rows allowed).

    multilabel + bce -> ``loss_bce`` (mean over N * T, ``pos_weight`` per tag); multilabel + focal ->
    ``loss_focal`` (sigmoid focal loss, gamma 2, no alpha, positives weighted by ``pos_weight``, mean over
    N * T); multiclass -> ``loss_ce`` (cross-entropy against the target rows, mean over N)."""
    if logits.shape != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    targets = targets.to(logits.dtype)
    if spec.mode == "multiclass":
        return {"loss_ce": F.cross_entropy(logits, targets)}
    pw = None if spec.pos_weight is None else torch.as_tensor(spec.pos_weight, dtype=logits.dtype,
                                                               device=logits.device)
    if spec.loss == "focal":
        per = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=FOCAL_GAMMA, reduction="none")
        if pw is not None:
            per = per * (1 + (pw - 1) * targets)
        return {"loss_focal": per.mean()}
    return {"loss_bce": F.binary_cross_entropy_with_logits(logits, targets, pos_weight=pw)}
