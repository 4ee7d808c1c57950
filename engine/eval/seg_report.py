"""The segmentation evaluation report: per-class IoU table, mIoU and the pixel confusion matrix.

Maths from ``engine.eval.segmentation`` (one confusion matrix summed over all images, PASCAL VOC
style; truth pixels 255 ignored; a class absent from both truth and prediction has NaN IoU and
is left out of mIoU). Classes are model labels 0..C-1 with 0 = background.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.eval.export import confusion_rows, json_safe, write_csv
from engine.eval.segmentation import SegmentationMeter, iou_per_class, mean_iou, pixel_accuracy


@dataclass(frozen=True)
class SegmentationReport:
    """class_names: C names, index = model label (0 = background). confusion: (C, C) int64 pixel
    counts, truth rows, prediction columns. iou: (C,) float64, NaN for absent classes."""

    class_names: tuple[str, ...]
    images: int
    confusion: np.ndarray
    iou: np.ndarray
    miou: float
    pixel_acc: float
    boundary_f: float
    kind: str = field(default="segmentation")

    @staticmethod
    def from_meter(meter: SegmentationMeter, class_names: Sequence[str]) -> SegmentationReport:
        """The report of everything ``meter`` accumulated; ``class_names`` has C names, background first."""
        cm = np.asarray(meter.cm, np.int64)
        if len(class_names) != len(cm):
            raise ValueError(f"{len(class_names)} class names for a {len(cm)}-class confusion matrix")
        return SegmentationReport(tuple(str(n) for n in class_names), len(meter.bf), cm.copy(), iou_per_class(cm),
                                  mean_iou(cm), pixel_accuracy(cm),
                                  float(np.mean(meter.bf)) if meter.bf else 0.0)

    @staticmethod
    def from_maps(truths: Sequence[np.ndarray], preds: Sequence[np.ndarray],
                  class_names: Sequence[str]) -> SegmentationReport:
        """From (H, W) integer truth / prediction maps, one pair per image."""
        meter = SegmentationMeter(len(class_names))
        for t, p in zip(truths, preds, strict=True):
            meter.update(t, p)
        return SegmentationReport.from_meter(meter, class_names)

    def per_class(self) -> list[dict]:
        """Per class: IoU, truth / predicted / correct pixels, pixel precision and recall."""
        cm = self.confusion
        tp, truth, pred = np.diag(cm), cm.sum(1), cm.sum(0)
        rows = []
        for c, name in enumerate(self.class_names):
            rows.append({"label": c, "class": name, "iou": self.iou[c], "truth_pixels": int(truth[c]),
                         "predicted_pixels": int(pred[c]), "correct_pixels": int(tp[c]),
                         "precision": tp[c] / pred[c] if pred[c] else float("nan"),
                         "recall": tp[c] / truth[c] if truth[c] else float("nan")})
        return json_safe(rows)

    def summary(self) -> dict:
        return json_safe({"miou": self.miou, "pixel_acc": self.pixel_acc, "boundary_f": self.boundary_f,
                          "per_class_iou": dict(zip(self.class_names, self.iou))})

    def to_json(self) -> dict:
        return json_safe({"kind": self.kind, "images": self.images, "classes": list(self.class_names),
                          "miou": self.miou, "pixel_acc": self.pixel_acc, "boundary_f": self.boundary_f,
                          "per_class": self.per_class(),
                          "confusion": {"labels": list(self.class_names), "rows": "truth",
                                        "columns": "prediction", "unit": "pixels", "matrix": self.confusion}})

    def to_csv(self, out_dir: str | Path) -> list[Path]:
        """per_class.csv and confusion.csv (pixels) in ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        rows = self.per_class()
        return [write_csv(out / "per_class.csv", list(rows[0]) if rows else ["label", "class"],
                          [list(r.values()) for r in rows]),
                write_csv(out / "confusion.csv", *confusion_rows(self.confusion, list(self.class_names)))]
