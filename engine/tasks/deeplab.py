"""DeepLabV3 (torchvision) as a registered segmentation task, with dense-CRF evaluation.

Labels: the project's categories -> 1..K, 0 = background. Targets are per-pixel class maps
rasterised from polygons and brush masks (``engine.data.segmentation.semantic_mask``: images
without any polygon/mask have no truth — all pixels ignored (255) and left out of training; in an
annotated image uncovered pixels are background and box-only objects are ignored inside their box).
The model resizes its inputs so the short side is ``spec.min_size`` (from the data, at most
``DEFAULT_MIN_SIZE[backbone]``, unless set) and returns probabilities in original pixels.

Metrics: ``miou`` (selection), ``boundary_f`` (BF, tolerance 0.75 % of the diagonal) and
``pixel_acc`` over non-ignored pixels (``engine.eval.segmentation``). ``TrainConfig.norm`` and
``trainable_backbone_layers`` do not apply (a pretrained backbone keeps its BatchNorm statistics
frozen, everything else trains).

``evaluate_details(model, loader, device, cancel, crf="none"|"exact"|"fast", crf_params=None)``
adds ``iou_per_class`` and, with a CRF, ``miou_crf``, ``boundary_f_crf``, ``pixel_acc_crf`` and
``crf_ms_per_image`` (time in ``dense_crf`` only). Order, as in DeepLab: the network's logits are
upsampled bilinearly to the image's own size and softmaxed, the dense CRF refines those
probabilities at the image's size against the original RGB pixels, then argmax.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from engine.config import TrainConfig
from engine.crf import CrfParams, dense_crf
from engine.data.dataset import SampleRecord, collate, size_from_data
from engine.data.segmentation import SegmentationDataset, has_segmentation_truth, seg_train_transform
from engine.data.tensors import image_tensor
from engine.eval.segmentation import SegmentationMeter
from engine.jobs import CancelToken
from engine.models.deeplab import BACKBONES, DeeplabSpec, build_deeplab
from engine.project.store import Store
from engine.tasks.base import LabelSpace, TaskDataError, eval_mode
from engine.tasks.faster_rcnn import category_space

METRICS = ("miou", "boundary_f", "pixel_acc")
CRF_BACKENDS = ("none", "exact", "fast")
# default input short side when min_size is 0: the data's median short side, capped here (CPU
# budget: the tiny net at 160 px learned the 300-image demo best in 3 minutes, bench_seg_quality.py)
DEFAULT_MIN_SIZE = {"tiny": 160, "mobilenet_v3_large": 320, "resnet50": 384}


def _uint8_image(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] -> (H, W, 3) uint8 RGB (exact for images that came from uint8)."""
    x = image.as_subclass(torch.Tensor).detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def crf_params_from(value: CrfParams | dict | None) -> CrfParams:
    """CrfParams from a dict (missing fields = defaults) or as given; ValueError (one line) when out of range."""
    if value is None:
        return CrfParams().validate()
    if isinstance(value, CrfParams):
        return value.validate()
    if not isinstance(value, dict):
        raise ValueError(f"CRF parameters must be a JSON object, got {type(value).__name__}")
    return CrfParams.from_dict(value)


class DeeplabTask:
    name = "deeplab"
    kind = "segmentation"
    backbones = BACKBONES
    metric_names = METRICS
    selection_metric = "miou"
    higher_is_better = True
    capabilities = frozenset({"crf", "suggest"})

    def label_space(self, store: Store) -> LabelSpace:
        return category_space(store)

    def check_data(self, records: list[SampleRecord], labels: LabelSpace) -> None:
        if not labels.ids:
            raise TaskDataError("the project has no categories to train on")
        known = set(labels.ids)
        if not any(has_segmentation_truth(r.annotations, known) for r in records):
            raise TaskDataError("no image has a mask or polygon annotation (boxes alone are not "
                                "segmentation truth): paint masks or draw polygons first")

    def spec_from_data(self, cfg: TrainConfig, records: list[SampleRecord], labels: LabelSpace) -> DeeplabSpec:
        short, _ = size_from_data(records)
        min_size = cfg.min_size or min(short, DEFAULT_MIN_SIZE.get(cfg.backbone, 320))
        if cfg.max_size and not cfg.min_size:
            min_size = min(min_size, cfg.max_size)
        return DeeplabSpec(backbone=cfg.backbone, num_classes=labels.num_outputs, min_size=int(min_size),
                           max_size=int(cfg.max_size or 2 * min_size), pretrained=cfg.pretrained).validate()

    def spec_from_dict(self, d: dict) -> DeeplabSpec:
        return DeeplabSpec.from_dict(d)

    def build(self, spec: DeeplabSpec) -> tuple[nn.Module, list[str]]:
        return build_deeplab(spec)

    def dataset(self, records: list[SampleRecord], labels: LabelSpace, cfg: TrainConfig | None,
                train: bool) -> Dataset:
        if train:  # images without segmentation truth teach nothing
            known = set(labels.ids)
            records = [r for r in records if has_segmentation_truth(r.annotations, known)]
        transform = seg_train_transform(cfg) if train and cfg is not None else None
        return SegmentationDataset(records, labels.label_map, transform)

    def collate(self, batch: list[tuple[torch.Tensor, dict]]) -> tuple[list[torch.Tensor], list[dict]]:
        return collate(batch)

    def evaluate(self, model: nn.Module, loader: DataLoader, device: torch.device,
                 cancel: CancelToken | None) -> dict[str, float]:
        details = self.evaluate_details(model, loader, device, cancel)
        return {k: float(details[k]) for k in METRICS}

    @torch.no_grad()
    def evaluate_details(self, model: nn.Module, loader: DataLoader, device: torch.device,
                         cancel: CancelToken | None, crf: str = "none",
                         crf_params: CrfParams | dict | None = None, **_: Any) -> dict[str, Any]:
        """The metrics, ``iou_per_class`` (None for absent classes) and with ``crf`` the same after the
        dense CRF plus ``crf_ms_per_image`` (see the module docstring for the order of operations)."""
        if crf not in CRF_BACKENDS:
            raise ValueError(f"unknown CRF backend {crf!r}; expected one of {', '.join(CRF_BACKENDS)}")
        params = crf_params_from(crf_params) if crf != "none" else None
        crf_device = str(device) if crf == "fast" else "cpu"
        num_classes = int(getattr(model, "num_classes", 0)) or len(getattr(loader.dataset, "label_map", {})) + 1
        plain, refined = SegmentationMeter(num_classes), SegmentationMeter(num_classes)
        crf_s, crf_images = 0.0, 0
        with eval_mode(model):
            for images, targets in loader:
                if cancel is not None:
                    cancel.check()
                outs = model([im.as_subclass(torch.Tensor).to(device) for im in images])
                for im, t, o in zip(images, targets, outs):
                    truth = t["mask"].as_subclass(torch.Tensor).numpy()
                    probs = o["probs"].cpu().numpy().astype(np.float32, copy=False)  # (C, H, W)
                    plain.update(truth, probs.argmax(0))  # numpy: ~5x faster than torch's argmax over dim 0
                    if params is None or not (truth != 255).any():
                        continue
                    t0 = time.perf_counter()
                    q = dense_crf(_uint8_image(im), probs, params, crf, crf_device)
                    crf_s += time.perf_counter() - t0
                    crf_images += 1
                    refined.update(truth, q.argmax(0))
        base = plain.compute()
        out: dict[str, Any] = {k: float(base[k]) for k in METRICS}
        out["iou_per_class"] = [None if np.isnan(v) else round(float(v), 6) for v in base["iou_per_class"]]
        if params is not None:
            after = refined.compute()
            out.update({f"{k}_crf": float(after[k]) for k in METRICS})
            out["crf_ms_per_image"] = 1000.0 * crf_s / max(1, crf_images)
            out["crf"] = crf
            out["crf_params"] = params.to_dict()
        return out

    def predict(self, model: nn.Module, images: list[np.ndarray], device: torch.device) -> list[dict[str, Any]]:
        with eval_mode(model):
            outs = model([image_tensor(im).to(device) for im in images])
        results = []
        for o in outs:
            probs = o["probs"].cpu().numpy().astype(np.float32)
            results.append({"class_map": probs.argmax(0).astype(np.int64), "probs": probs})
        return results


TASK = DeeplabTask()

