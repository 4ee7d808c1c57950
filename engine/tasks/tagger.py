"""Image tagger as a registered classification task: one score per project tag.

Labels: the project's image tags (``store.tags()``) -> 0..T-1, no background. Every image of the
training split counts; an image without tags is a negative for every tag. The network
(``engine.models.tagger``) sees each image resized to a square ``input_size`` (``cfg.min_size``,
else ``DEFAULT_INPUT_SIZE``) by ``square_resize`` — in the model itself, so ``predict`` takes
images of any size. Options in ``TrainConfig.extra``:

- ``tagger_mode``: ``"auto"`` (default: ``choose_mode`` over the training images' tag sets —
  softmax + cross-entropy when every image has exactly one tag, else sigmoid per tag),
  ``"multilabel"`` or ``"multiclass"``. The mode and the reason reach the user as notices
  (``data_notices``).
- ``tagger_loss``: ``"bce"`` (default) or ``"focal"`` (sigmoid focal loss, multilabel only).
- ``tagger_pos_weight``: ``"none"``, ``"auto"`` (default: n_neg / n_pos per tag over the training
  images, clipped to ``POS_WEIGHT_CLIP``) or a list of T positive numbers; multilabel only.

Augmentation (train only): horizontal flip, zoom-out scale jitter (0.8-1, the picture never
loses content, so its tags stay true) and colour jitter, switched by the ``augment_*`` fields;
``augment_crop`` is ignored because a crop can cut a tagged object out of the picture.

Thresholds: ``evaluate`` (run on val by the trainer) tunes one threshold per tag for maximum F1
and stores it in the model's ``thresholds`` buffer (T,) float32, so every checkpoint written after
an evaluation carries them and ``load_model`` restores them. Read them with
``TASK.thresholds(model)`` (a (T,) float32 array in label order, i.e. ``labels.ids`` order); a tag
is suggested when ``predict(...)["scores"][t] >= thresholds[t]``. ``evaluate_details`` (used by
``anchorlab eval``) scores a split at those stored thresholds, never re-tuning on it.
Metrics: ``map`` (mean over tags of average precision), ``f1_macro``, ``f1_micro``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from engine.config import TrainConfig
from engine.data.dataset import SampleRecord
from engine.data.tensors import image_tensor
from engine.eval.tags import f1_scores, multilabel_map, per_tag_ap, tune_thresholds
from engine.jobs import CancelToken
from engine.models.tagger import (
    LOSSES,
    MODES,
    TAGGER_BACKBONES,
    TaggerSpec,
    build_tagger,
    choose_mode,
    tag_probabilities,
    tagger_loss,
)
from engine.project.imageio import read_rgb
from engine.project.store import Store
from engine.tasks.base import LabelSpace, TaskDataError, eval_mode

DEFAULT_INPUT_SIZE = 128
POS_WEIGHT_CLIP = (0.1, 10.0)
METRICS = ("map", "f1_macro", "f1_micro")


def square_resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """(3, H, W) float -> (3, size, size) float: bilinear with antialiasing (aspect not kept)."""
    image = image.as_subclass(torch.Tensor)
    if image.shape[-2:] == (size, size):
        return image
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)[0]


def tag_matrix(records: list[SampleRecord], labels: LabelSpace) -> np.ndarray:
    """(N, T) bool: record n has tag ``labels.ids[t]``."""
    index = labels.label_map
    out = np.zeros((len(records), len(labels.ids)), bool)
    for n, r in enumerate(records):
        for tag in r.tags:
            if tag in index:
                out[n, index[tag]] = True
    return out


def auto_pos_weight(truth: np.ndarray) -> list[float]:
    """(T,) n_neg / n_pos per tag of an (N, T) bool matrix, clipped to ``POS_WEIGHT_CLIP`` (1 without positives)."""
    pos = truth.sum(0).astype(np.float64)
    neg = len(truth) - pos
    w = np.divide(neg, pos, out=np.ones_like(pos), where=pos > 0)
    return [float(v) for v in np.clip(w, *POS_WEIGHT_CLIP)]


class TagDataset(Dataset):
    """Items ``(image (3, H, W) float32 [0, 1], {"tags": (T,) float32 multi-hot, "image_id": int})``.

    With ``input_size`` (training) the image is already ``square_resize``d, then augmented."""

    def __init__(self, records: list[SampleRecord], labels: LabelSpace, input_size: int = 0,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.records = list(records)
        self.labels = labels
        self.names = list(labels.names)
        self.label_map = labels.label_map
        self.truth = tag_matrix(self.records, labels)
        self.input_size = input_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict]:
        image = image_tensor(read_rgb(self.records[index].path))
        if self.input_size:
            image = square_resize(image, self.input_size)
        if self.transform is not None:
            image = self.transform(image).clamp_(0, 1)
        return image, {"tags": torch.from_numpy(self.truth[index].astype(np.float32)),
                       "image_id": self.records[index].image_id}


def tag_transform(cfg: TrainConfig) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Label-preserving augmentation of a (3, S, S) float image (see the module docstring)."""
    steps: list[Callable] = []
    if cfg.augment_flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    if cfg.augment_scale:
        steps.append(v2.RandomAffine(degrees=0.0, scale=(0.8, 1.0), fill=0.45,
                                     interpolation=v2.InterpolationMode.BILINEAR))
    if cfg.augment_color:
        steps.append(v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3))
    return v2.Compose(steps) if steps and not cfg.overfit_one_batch else None


class TaggerModel(nn.Module):
    """The trainable tagger: ``forward(images, targets=None)``.

    ``images``: list of (3, H, W) float [0, 1] (any sizes; each is ``square_resize``d to
    ``spec.input_size``). Train mode: ``targets`` (dicts with ``tags`` (T,) float multi-hot) ->
    ``{"loss_bce" | "loss_focal" | "loss_ce": scalar}``. Eval mode: (N, T) float32 probabilities.
    Buffer ``thresholds`` (T,) float32: per-tag decision thresholds (saved with the weights).
    """

    def __init__(self, spec: TaggerSpec, net: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.net = net
        init = spec.thresholds if spec.thresholds is not None else [0.5] * spec.num_tags
        self.register_buffer("thresholds", torch.tensor(init, dtype=torch.float32))

    def logits(self, images: list[torch.Tensor]) -> torch.Tensor:
        """(N, T) logits of a list of (3, H, W) images."""
        s = self.spec.input_size
        return self.net(torch.stack([square_resize(im, s) for im in images]))

    def forward(self, images: list[torch.Tensor], targets: list[dict] | None = None
                ) -> dict[str, torch.Tensor] | torch.Tensor:
        logits = self.logits(images)
        if not self.training:
            return tag_probabilities(logits, self.spec.mode)
        if targets is None:
            raise ValueError("a tagger in train mode needs targets")
        y = torch.stack([t["tags"].as_subclass(torch.Tensor) for t in targets]).to(logits)
        if self.spec.mode == "multiclass":  # one-hot rows; an untagged image adds nothing
            y = y / y.sum(1, keepdim=True).clamp(min=1)
        return tagger_loss(logits, y, self.spec)


def _choose(truth: np.ndarray) -> tuple[str, str]:
    """``choose_mode`` over the rows of an (N, T) bool tag matrix."""
    return choose_mode([set(np.flatnonzero(row).tolist()) for row in truth])


def _finite(v: float) -> float:
    return float(v) if math.isfinite(v) else 0.0


class TaggerTask:
    name = "tagger"
    kind = "classification"
    backbones = TAGGER_BACKBONES
    metric_names = METRICS
    selection_metric = "map"
    higher_is_better = True
    capabilities = frozenset({"suggest"})

    def label_space(self, store: Store) -> LabelSpace:
        tags = store.tags()
        return LabelSpace(tuple(t.id for t in tags), tuple(t.name for t in tags), background=False)

    def check_data(self, records: list[SampleRecord], labels: LabelSpace) -> None:
        if not labels.ids:
            raise TaskDataError("the project has no image tags to learn from")
        if not tag_matrix(records, labels).any():
            raise TaskDataError("no image tags to learn from: none of these images has a tag")

    @staticmethod
    def _mode(cfg: TrainConfig, truth: np.ndarray, loss: str) -> str:
        """The config's ``tagger_mode``, else multilabel for focal loss, else ``choose_mode`` on the data."""
        wanted = str(cfg.extra.get("tagger_mode", "auto"))
        if wanted not in ("auto", *MODES):
            raise TaskDataError(f"tagger_mode {wanted!r} is not one of auto, {', '.join(MODES)}")
        if wanted != "auto":
            return wanted
        return "multilabel" if loss == "focal" else _choose(truth)[0]

    def spec_from_data(self, cfg: TrainConfig, records: list[SampleRecord], labels: LabelSpace) -> TaggerSpec:
        truth = tag_matrix(records, labels)
        loss = str(cfg.extra.get("tagger_loss", "bce"))
        if loss not in LOSSES:
            raise TaskDataError(f"tagger_loss {loss!r} is not one of {', '.join(LOSSES)}")
        mode = self._mode(cfg, truth, loss)
        pw = cfg.extra.get("tagger_pos_weight", "auto")
        if mode == "multiclass" or pw in ("none", None):
            pos_weight = None
        elif pw == "auto":
            pos_weight = auto_pos_weight(truth)
        elif isinstance(pw, list | tuple) and all(isinstance(v, int | float) for v in pw):
            pos_weight = [float(v) for v in pw]
        else:
            raise TaskDataError(f"tagger_pos_weight must be 'auto', 'none' or a list of {len(labels.ids)} numbers")
        spec = TaggerSpec(backbone=cfg.backbone, num_tags=len(labels.ids),
                          input_size=cfg.min_size or DEFAULT_INPUT_SIZE, mode=mode, loss=loss,
                          pos_weight=pos_weight, pretrained=cfg.pretrained)
        try:
            spec.validate()
        except ValueError as e:
            raise TaskDataError(str(e)) from e
        return spec

    def data_notices(self, records: list[SampleRecord], labels: LabelSpace, spec: TaggerSpec) -> list[str]:
        """What the user should know about the spec chosen from the data: the mode and why, the loss."""
        truth = tag_matrix(records, labels)
        chosen, why = _choose(truth)
        if spec.mode == chosen:
            notes = [f"tagger mode {why}"]
        else:
            cause = "focal loss is a per-tag (sigmoid) loss" if spec.loss == "focal" else "set by tagger_mode"
            notes = [f"tagger mode {spec.mode}: {cause} (from the data alone: {why})"]
        loss = "softmax cross-entropy" if spec.mode == "multiclass" else \
            {"bce": "binary cross-entropy per tag", "focal": "sigmoid focal loss per tag"}[spec.loss]
        if spec.pos_weight is not None:
            loss += " with positive weights " + ", ".join(f"{n}={w:.2g}" for n, w in zip(labels.names, spec.pos_weight))
        notes.append(f"tagger loss: {loss}; {len(labels.ids)} tags, input {spec.input_size}x{spec.input_size} px")
        untagged = int((~truth.any(1)).sum())
        if untagged:
            notes.append(f"{untagged} of {len(records)} training images have no tag: negatives for every tag")
        return notes

    def spec_from_dict(self, d: dict) -> TaggerSpec:
        return TaggerSpec.from_dict(d)

    def build(self, spec: TaggerSpec) -> tuple[nn.Module, list[str]]:
        net, notices = build_tagger(spec)
        return TaggerModel(spec, net), notices

    def dataset(self, records: list[SampleRecord], labels: LabelSpace, cfg: TrainConfig | None,
                train: bool) -> Dataset:
        if not train or cfg is None:
            return TagDataset(records, labels)
        return TagDataset(records, labels, cfg.min_size or DEFAULT_INPUT_SIZE, tag_transform(cfg))

    def collate(self, batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
        images, targets = zip(*batch)
        return list(images), list(targets)

    @torch.no_grad()
    def scores(self, model: nn.Module, loader: DataLoader, device: torch.device,
               cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray]:
        """Eval-mode ``(scores (N, T) float32 probabilities, truth (N, T) bool)`` over ``loader``."""
        out, truth = [], []
        with eval_mode(model):
            for images, targets in loader:
                if cancel is not None:
                    cancel.check()
                out.append(model([im.to(device) for im in images]).float().cpu().numpy())
                truth += [t["tags"].numpy() > 0.5 for t in targets]
        t = self._num_tags(model)
        return (np.concatenate(out) if out else np.zeros((0, t), np.float32),
                np.array(truth, bool).reshape(-1, t))

    @staticmethod
    def _num_tags(model: nn.Module) -> int:
        return int(getattr(model, "module", model).thresholds.numel())

    @staticmethod
    def thresholds(model: nn.Module) -> np.ndarray:
        """(T,) float32 per-tag thresholds of a tagger model (label order; see the module docstring)."""
        return getattr(model, "module", model).thresholds.detach().cpu().numpy().copy()

    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device,
                 cancel: CancelToken | None) -> dict[str, float]:
        """mAP and F1 at thresholds tuned here for max F1 per tag, which are stored in the model.

        Undefined values (no positive of any tag in ``loader``) are reported as 0."""
        s, y = self.scores(model, loader, device, cancel)
        thr = tune_thresholds(s, y) if len(s) else self.thresholds(model).astype(np.float64)
        thr32 = thr.astype(np.float32)
        thr32 = np.where(thr32 < thr, np.nextafter(thr32, np.float32(np.inf)), thr32)  # keep `s >= thr` exact
        getattr(model, "module", model).thresholds.copy_(torch.from_numpy(thr32))
        return self._metrics(s, y, thr32)[0]

    def _metrics(self, s: np.ndarray, y: np.ndarray, thr: np.ndarray, names: list[str] | None = None
                 ) -> tuple[dict[str, float], dict]:
        if len(s) == 0:
            return dict.fromkeys(METRICS, 0.0), {"per_tag": {}}
        f1 = f1_scores(s, y, thr, names)
        return {"map": _finite(multilabel_map(s, y)), "f1_macro": _finite(f1["f1_macro"]),
                "f1_micro": _finite(f1["f1_micro"])}, f1

    def evaluate_details(self, model: nn.Module, loader: DataLoader, device: torch.device,
                         cancel: CancelToken | None) -> dict[str, Any]:
        """``metric_names`` at the model's stored thresholds (no tuning on this data) plus ``per_tag``:
        {tag name: {ap (None without positives), f1, precision, recall, support, threshold}} and ``mode``."""
        s, y = self.scores(model, loader, device, cancel)
        thr = self.thresholds(model)
        names = list(getattr(loader.dataset, "names", [str(i) for i in range(len(thr))]))
        metrics, f1 = self._metrics(s, y, thr, names)
        ap = per_tag_ap(s, y) if len(s) else np.full(len(thr), np.nan)
        per_tag = {n: {"ap": float(a) if math.isfinite(a) else None, **f1["per_tag"].get(n, {}),
                       "threshold": float(t)} for n, a, t in zip(names, ap, thr)}
        return {**metrics, "per_tag": per_tag, "mode": getattr(model, "module", model).spec.mode}

    def predict(self, model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
        with eval_mode(model):
            probs = model([image_tensor(im).to(device) for im in images]).float().cpu().numpy()
        return [{"scores": p.astype(np.float32)} for p in probs]


TASK = TaggerTask()
