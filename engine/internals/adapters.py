"""What the internals need to know about each model family, found by duck typing (no task imports).

- ``family(model)``: ``frcnn`` (a torchvision ``GeneralizedRCNN``), ``yolo`` (``YoloV1Detector``: ``raw``
  and a spec with ``S``/``B``), ``segmentation`` (``DeeplabModel``: ``net``, ``num_classes`` and an
  ``input_size(h, w)`` method) or ``classification`` (the tagger, or any module mapping a (N, 3, H, W)
  batch to (N, T) logits).
- ``trunk_name``: the submodule whose layers the user picks — ``backbone`` (Faster R-CNN), ``net`` (the
  network inside the YOLOv1, DeepLab and tagger wrappers, after their resize), "" otherwise.
- ``Frame``: the model-input <-> original-pixel mapping. Every family resizes the image to ``input_hw``
  (h, w) and pads at the bottom/right only, so original = input * (sx, sy) with (sx, sy) = (W / w, H / h);
  torchvision computes its detector's scale the same way (``resize_boxes``: original / input per axis).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN

from engine.internals.probe import Probe

Family = Literal["frcnn", "yolo", "segmentation", "classification"]


@dataclass(frozen=True)
class Frame:
    """``image_hw`` (H, W) original image; ``input_hw`` (h, w) the image inside the model (unpadded)."""

    image_hw: tuple[int, int]
    input_hw: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): original pixels per model-input pixel."""
        return self.image_hw[1] / self.input_hw[1], self.image_hw[0] / self.input_hw[0]


def family(model: nn.Module) -> Family:
    """The model family (module docstring); unwraps DistributedDataParallel."""
    model = getattr(model, "module", model)
    if isinstance(model, GeneralizedRCNN):
        return "frcnn"
    spec = getattr(model, "spec", None)
    if callable(getattr(model, "raw", None)) and hasattr(spec, "S") and hasattr(spec, "B"):
        return "yolo"
    if isinstance(getattr(model, "net", None), nn.Module) and callable(getattr(model, "input_size", None)) \
            and hasattr(model, "num_classes"):
        return "segmentation"
    return "classification"


def trunk_name(model: nn.Module) -> str:
    """The submodule whose layers are listed (module docstring)."""
    if family(model) == "frcnn":
        return "backbone"
    return "net" if isinstance(getattr(model, "net", None), nn.Module) else ""


def extras(fam: Family) -> tuple[str, ...]:
    """Modules outside the trunk whose outputs the internals read (Faster R-CNN's resize and box head)."""
    return ("transform", "roi_heads") if fam == "frcnn" else ()


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def forward(model: nn.Module, fam: Family, x: torch.Tensor) -> Any:
    """One eval forward of (3, H, W) image ``x`` the way the family takes images: detectors and DeepLab a
    list (detections in original pixels / probabilities), the tagger its ``logits``, a plain classifier a
    (1, 3, H, W) batch (-> (1, T) logits)."""
    if fam != "classification":
        return model([x])
    logits = getattr(model, "logits", None)
    return logits([x]) if callable(logits) else model(x[None])


def frame(model: nn.Module, fam: Family, probe: Probe, image_hw: tuple[int, int]) -> Frame:
    """The input frame of the probed forward: the detector transform's unpadded size, DeepLab's
    ``input_size``, else the trunk's input size (square resizes, plain classifiers)."""
    if fam == "frcnn":
        image_list = probe.output("transform")[0]
        h, w = (int(v) for v in image_list.image_sizes[0])
        return Frame(image_hw, (h, w))
    if fam == "segmentation":
        h, w = model.input_size(*image_hw)
        return Frame(image_hw, (int(h), int(w)))
    if probe.input_hw is None:
        raise ValueError("the model's trunk received no (N, C, H, W) image tensor")
    return Frame(image_hw, probe.input_hw)


def dummy_size(model: nn.Module, fam: Family) -> tuple[int, int]:
    """(H, W) of a blank image for listing layers without an image: the size the model works at."""
    if fam == "frcnn":
        s = int(model.transform.min_size[-1])
    else:
        spec = getattr(model, "spec", None)
        s = int(getattr(spec, "input_size", 0) or getattr(model, "min_size", 0) or 224)
    return s, s
