"""``report_job``: the evaluation report of a checkpoint on a split, for any registered task kind.

Config (a plain dict): ``{"project", "checkpoint", "split": "val", "iou": 0.5, "score": 0.25,
"device": "auto", "batch_size": 4, "max_images": 0, "out": None}``. The checkpoint is loaded through the task
registry; every image of the split goes through the task's un-augmented ``dataset`` (ground truth)
and ``predict`` (original pixels), and the maths is ``engine.eval``'s:

- detection: ``DetectionReport`` (COCO stats and per-class curves over all predictions; confusion
  matrix at ``iou``/``score``) and the TP/FP/FN error list (``engine.eval.errors``, predictions
  scored ``>= score``);
- segmentation: ``SegmentationReport`` (per-class IoU, mIoU, pixel confusion matrix);
- classification (tags): ``TagReport`` at the model's own per-tag thresholds when the task has
  them (the tagger's ``thresholds(model)``), else at ``score``.

Plus the run's ``RunCurves`` (train/val loss, gap, early stop, best epoch) when the checkpoint's
run is in this project. ``build_report`` returns that as a ``ReportResult``; ``report_job`` wraps it
in the job's dict result and, given ``out``, calls ``write_report(result, out_dir)``, which writes
report.json, the CSVs and the PNGs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.data.dataset import snapshot_split
from engine.device import select_device
from engine.eval.curves import RunCurves, run_curves
from engine.eval.detection import ImageDetections, ImageTargets
from engine.eval.errors import ErrorRecord, detection_errors, error_counts, write_errors_csv
from engine.eval.export import json_safe, write_csv
from engine.eval.plots import bar_plot, heatmap, line_plot
from engine.eval.report import DetectionReport, build_detection_report
from engine.eval.seg_report import SegmentationReport
from engine.eval.segmentation import SegmentationMeter
from engine.eval.tag_report import TagReport, build_tag_report
from engine.events import Progress
from engine.inference.jobs import InferenceError
from engine.jobs import CancelToken, Sink
from engine.project.store import Store, StoreError
from engine.tasks.base import TaskDataError
from engine.tasks.checkpoint import CheckpointError, load_model

Report = DetectionReport | SegmentationReport | TagReport


@dataclass(frozen=True)
class ReportResult:
    """What ``report_job`` returns: the report of ``kind``, the error list (detection only, else
    empty) and the run's curves (None when the run is not in the project)."""

    task: str
    kind: str
    split: str
    checkpoint: str
    run_id: int
    images: int
    report: Report
    errors: list[ErrorRecord] = field(default_factory=list)
    curves: RunCurves | None = None

    def summary(self) -> dict:
        """One JSON-able dict: where it came from, the headline metrics and the error counts."""
        out: dict[str, Any] = {"task": self.task, "kind": self.kind, "split": self.split, "images": self.images,
                               "checkpoint": self.checkpoint, "run_id": self.run_id,
                               "metrics": self.report.summary()}
        if self.kind == "detection":
            out["errors"] = error_counts(self.errors)
        if self.curves is not None:
            out["best_epoch"] = self.curves.best_epoch
            out["early_stop_epoch"] = self.curves.early_stop_epoch
        return json_safe(out)


def _number(config: dict, key: str, default: float) -> float:
    value = config.get(key, default)
    try:
        v = float(default if value is None else value)
    except (TypeError, ValueError):
        v = math.nan
    lo_open = key == "iou"
    if not math.isfinite(v) or not (0 < v <= 1 if lo_open else 0 <= v <= 1):
        raise InferenceError(f"{key} must be a number in {'(0, 1]' if lo_open else '[0, 1]'} (got {value})")
    return v


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float [0, 1] -> (H, W, 3) uint8 (exact for images decoded from uint8)."""
    x = image.as_subclass(torch.Tensor).detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def report_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """The job (a dict result, as the bridge expects): ``{**ReportResult.summary(), "result": the
    ReportResult (for the views; not JSON), "out": folder or None, "files": [paths written]}``.
    With ``config["out"]`` the report files are written there (``write_report``)."""
    result = build_report(config, sink, cancel)
    out = config.get("out")
    files = [str(p) for p in write_report(result, out)] if out else []
    return {**result.summary(), "result": result, "out": str(out) if out else None, "files": files}


def build_report(config: dict, sink: Sink, cancel: CancelToken) -> ReportResult:
    """Run a checkpoint over a split and build its report (see the module docstring)."""
    project, checkpoint = str(config["project"]), str(config["checkpoint"])
    split = str(config.get("split") or "val")
    iou, score = _number(config, "iou", 0.5), _number(config, "score", 0.25)
    batch = max(1, int(config.get("batch_size", 4)))
    device = select_device(config.get("device", "auto"))
    task, model, _, labels, meta = load_model(checkpoint, device)
    run_id = int(meta.get("run_id", 0))
    names = list(labels.names) if len(labels.names) == len(labels.ids) else [str(i) for i in labels.ids]
    with Store(project) as store:
        missing = sorted(set(labels.ids) - set(task.label_space(store).ids))
        if missing:
            raise CheckpointError(f"checkpoint {checkpoint} predicts ids {missing} that project {project} "
                                  "does not have")
        splits = sorted({im.split for im in store.images()})
        if split not in splits:
            raise InferenceError(f"split {split!r} has no images; splits with images: {', '.join(splits) or 'none'}")
        records = snapshot_split(store, split, int(config.get("max_images", 0)))
        try:
            curves = run_curves(store, run_id) if run_id else None
        except StoreError:  # a checkpoint from another project
            curves = None
    try:
        task.check_data(records, labels)
    except TaskDataError as e:
        raise InferenceError(f"split {split!r} has no ground truth to evaluate against: {e}") from e
    ds = task.dataset(records, labels, None, train=False)
    n = len(ds)
    gts: list[ImageTargets] = []
    dets: list[ImageDetections] = []
    meter = SegmentationMeter(labels.num_outputs) if task.kind == "segmentation" else None
    tag_scores: list[np.ndarray] = []
    tag_truth: list[np.ndarray] = []
    sink(Progress(0, n, f"report: {n} images"))
    for start in range(0, n, batch):
        cancel.check()
        items = [ds[i] for i in range(start, min(n, start + batch))]
        preds = task.predict(model, [_uint8(im) for im, _ in items], device)
        for (im, target), pred in zip(items, preds):
            image_id = int(target["image_id"])
            if task.kind == "detection":
                h, w = im.shape[-2:]
                gts.append(ImageTargets(image_id, int(w), int(h), target["boxes"].as_subclass(torch.Tensor).numpy(),
                                        target["labels"].numpy()))
                dets.append(ImageDetections(image_id, pred["boxes"], pred["scores"], pred["labels"]))
            elif meter is not None:
                meter.update(target["mask"].as_subclass(torch.Tensor).numpy(), pred["class_map"])
            else:
                tag_scores.append(np.asarray(pred["scores"], np.float64))
                tag_truth.append(target["tags"].numpy() > 0.5)
        sink(Progress(min(n, start + batch), n, "report"))
    errors: list[ErrorRecord] = []
    report: Report
    if task.kind == "detection":
        report = build_detection_report(gts, dets, names, iou, score)
        errors = detection_errors(gts, dets, iou, score)
    elif meter is not None:
        report = SegmentationReport.from_meter(meter, ["background", *names])
    else:
        t = len(labels.ids)
        own = getattr(task, "thresholds", None)
        thr = np.asarray(own(model), np.float64) if callable(own) else np.full(t, score)
        report = build_tag_report(np.array(tag_scores).reshape(-1, t), np.array(tag_truth).reshape(-1, t), thr,
                                  names)
    return ReportResult(task.name, task.kind, split, checkpoint, run_id, n, report, errors, curves)


def _epoch_markers(c: RunCurves) -> list[tuple[str, float]]:
    out = [] if c.best_epoch is None else [(f"best (epoch {c.best_epoch})", float(c.best_epoch))]
    if c.early_stop_epoch is not None:
        out.append((f"early stop (epoch {c.early_stop_epoch})", float(c.early_stop_epoch)))
    return out


def write_report(result: ReportResult, out_dir: str | Path) -> list[Path]:
    """Write report.json, the report's CSVs, errors.csv (detection), curves.csv and the PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = result.report
    doc = {**result.summary(), "report": r.to_json(),
           "curves": result.curves.to_json() if result.curves is not None else None}
    paths = r.to_csv(out)
    if isinstance(r, DetectionReport):
        paths.append(write_errors_csv(result.errors, out / "errors.csv", r.class_names))
        labels = range(1, len(r.class_names) + 1)
        paths.append(line_plot(out / "pr.png", [(n, *r.pr_curve(k)) for n, k in zip(r.class_names, labels)],
                               "precision-recall at IoU 0.5", "recall", "precision"))
        paths.append(line_plot(out / "f1.png", [(n, *r.f1_vs_score(k)) for n, k in zip(r.class_names, labels)],
                               "F1 vs score threshold at IoU 0.5", "score threshold", "F1"))
        paths.append(heatmap(out / "confusion.png", r.confusion, ["background", *r.class_names],
                             f"confusion at IoU {r.iou:g}, score {r.score:g} (row share)"))
    elif isinstance(r, SegmentationReport):
        paths.append(heatmap(out / "confusion.png", r.confusion, list(r.class_names), "pixel confusion (row share)"))
        paths.append(bar_plot(out / "iou.png", list(r.class_names), r.iou, f"IoU per class (mIoU {r.miou:.3f})", "IoU"))
    else:
        paths.append(line_plot(out / "pr.png", [(n, *c) for n, c in zip(r.tag_names, r.pr_curves)],
                               "precision-recall per tag", "recall", "precision"))
        paths.append(line_plot(out / "f1.png", [(n, r.score_points, c) for n, c in zip(r.tag_names, r.f1_curve)],
                               "F1 vs score threshold", "score threshold", "F1"))
    c = result.curves
    if c is not None and len(c.epochs):
        metrics = c.val_metrics
        paths.append(write_csv(out / "curves.csv", ["epoch", "train_loss", "val_loss", "gap", *metrics],
                               zip(c.epochs, c.train_loss, c.val_loss, c.gap, *metrics.values())))
        paths.append(line_plot(out / "loss.png", [("train loss", c.epochs, c.train_loss),
                                                  ("val loss", c.epochs, c.val_loss), ("gap", c.epochs, c.gap)],
                               "loss per epoch (gap = val - train)", "epoch", "loss", xlim=None, ylim=None,
                               markers=_epoch_markers(c)))
    doc["files"] = sorted(p.name for p in paths) + ["report.json"]
    (out / "report.json").write_text(json.dumps(json_safe(doc), indent=1))
    paths.append(out / "report.json")
    return paths

