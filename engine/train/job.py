"""The training job: ``train_job(config, sink, cancel) -> dict`` — the GUI, the CLI and torchrun all call it.

``config`` is ``TrainConfig.to_dict()``. The job opens its own Store, snapshots the train and val
splits, builds the detector (``DetectorSpec`` from the data: min_size = median short side,
max_size = max long side, unless set), records a run in the store (rank 0 only), runs the
``Trainer`` with the default hooks and returns::

    {"run_id", "status", "map", "map50", "metrics": {12 COCO stats of the best checkpoint},
     "checkpoint": best.pt (or last.pt if never evaluated), "best_checkpoint", "last_checkpoint",
     "step", "epoch", "device", "message"}

A failed run (non-finite loss, out of memory) is recorded and then raised as ``TrainingError``;
Stop (``cancel.cancel()``) is not an error: status 'stopped', last.pt written.

``config["extra"]`` keys understood here: ``inject_nan_at_step`` (fault injection for tests: NaN
``loss_classifier`` at that step), ``metrics_every`` (store metric rows every N steps, default 50),
``param_digest_dir`` (each rank writes a digest of its parameters there after training; DDP test).
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from engine.data.dataset import DetectionDataset, SampleRecord, collate, make_label_map, size_from_data, snapshot_split
from engine.data.transforms import train_transform
from engine.eval.detection import STAT_NAMES
from engine.events import Notice, RunFinished, RunStarted
from engine.jobs import CancelToken, Sink
from engine.losses.regularization import param_groups
from engine.models.faster_rcnn import BACKBONES, DetectorSpec, build_faster_rcnn
from engine.project.store import Store
from engine.train import distributed
from engine.train.checkpoint import load_checkpoint, run_dir
from engine.train.config import TrainConfig
from engine.train.hooks import default_hooks, run_summary
from engine.train.trainer import Trainer, TrainingError, TrainState


def select_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; an explicit device that is missing is an error."""
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TrainingError("device 'cuda' was asked for but CUDA is not available on this machine")
    if name == "mps" and not has_mps:
        raise TrainingError("device 'mps' was asked for but MPS is not available on this machine")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    if name not in ("cpu", "mps") and not name.startswith("cuda:"):
        raise TrainingError(f"unknown device {name!r}; expected auto, cuda, mps or cpu")
    return torch.device(name)


def _validate(cfg: TrainConfig) -> None:
    if cfg.model != "faster_rcnn":
        raise TrainingError(f"model {cfg.model!r} is not supported by this trainer (faster_rcnn only)")
    if cfg.backbone not in BACKBONES:
        raise TrainingError(f"unknown backbone {cfg.backbone!r}; expected one of {', '.join(BACKBONES)}")
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise TrainingError("epochs and batch_size must be >= 1 and lr > 0")
    metric = cfg.early_stop_metric
    if metric not in STAT_NAMES and not metric.startswith("val_loss"):
        raise TrainingError(f"unknown early_stop_metric {metric!r}; expected one of {', '.join(STAT_NAMES)} "
                            "or val_loss[_<component>]")


class RepeatBatch:
    """The same batch ``steps`` times: the 'overfit one batch' loader."""

    def __init__(self, batch: tuple[list, list], steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __iter__(self):  # noqa: ANN204
        return iter([self.batch] * self.steps)

    def __len__(self) -> int:
        return self.steps


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise TrainingError(f"unknown optimizer {cfg.optimizer!r}; expected sgd or adamw")


def _spec(cfg: TrainConfig, records: list[SampleRecord], num_classes: int, ckpt: dict | None) -> DetectorSpec:
    if ckpt is not None:
        return DetectorSpec.from_dict(ckpt["spec"])
    min_size, max_size = size_from_data(records)
    return DetectorSpec(backbone=cfg.backbone, num_classes=num_classes, min_size=cfg.min_size or min_size,
                        max_size=cfg.max_size or max(max_size, cfg.min_size), norm=cfg.norm,
                        pretrained=cfg.pretrained,
                        box_batch_size_per_image=cfg.roi_samples or (128 if cfg.backbone == "tiny" else 512))


def _loader(cfg: TrainConfig, train_set: DetectionDataset, info: distributed.DistInfo, start_epoch: int
            ) -> DataLoader | RepeatBatch:
    if cfg.overfit_one_batch:
        return RepeatBatch(collate([train_set[i] for i in range(len(train_set))]), max(1, cfg.overfit_steps))
    sampler = DistributedSampler(train_set, info.world_size, info.rank, shuffle=True, seed=cfg.seed) \
        if info.enabled else None
    gen = torch.Generator().manual_seed(cfg.seed * 1009 + start_epoch)
    return DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=gen, collate_fn=collate, num_workers=cfg.workers,
                      persistent_workers=cfg.workers > 0, drop_last=len(train_set) > cfg.batch_size * info.world_size)


def train_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    """Train a detector as described in the module docstring."""
    cfg = TrainConfig.from_dict(config)
    _validate(cfg)
    if cfg.overfit_one_batch:  # sanity mode: one fixed batch, no augmentation, evaluated on itself
        cfg = dataclasses.replace(cfg, epochs=1, eval_every=1, augment_flip=False, augment_scale=False,
                                  augment_crop=False, augment_color=False)
    info = distributed.current()
    device = select_device(cfg.device, info.local_rank)
    with Store(cfg.project) as store:
        label_map = make_label_map(store)
        if not label_map:
            raise TrainingError(f"project {cfg.project} has no categories to train on")
        names = {c.id: c.name for c in store.categories()}
        train_records = snapshot_split(store, cfg.train_split, cfg.max_images)
        val_records = snapshot_split(store, cfg.val_split, cfg.max_images) if cfg.val_split else []
        if not train_records:
            raise TrainingError(f"split {cfg.train_split!r} of {cfg.project} has no images")
        if cfg.overfit_one_batch:
            train_records = [r for r in train_records if r.annotations][:cfg.batch_size] or train_records[:1]
            val_records = train_records
        ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
        if ckpt is not None and {int(k): int(v) for k, v in ckpt["label_map"].items()} != label_map:
            raise TrainingError(f"cannot resume from {cfg.resume}: the project's categories changed since "
                                "that checkpoint was written")
        spec = _spec(cfg, train_records, len(label_map) + 1, ckpt)
        torch.manual_seed(cfg.seed)
        model, notices = build_faster_rcnn(spec)
        model.to(device)
        optimizer = _optimizer(cfg, model)
        step = epoch0 = 0
        best: dict = {}
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            if ckpt.get("optimizer"):
                optimizer.load_state_dict(ckpt["optimizer"])
            step, epoch0, best = int(ckpt["step"]), int(ckpt["epoch"]) + 1, dict(ckpt.get("best") or {})
            notices = [f"resumed from {cfg.resume} at step {step} (epoch {epoch0 + 1} next)"]
        torch.manual_seed(cfg.seed + info.rank + 7919 * epoch0)
        train_set = DetectionDataset(train_records, label_map, train_transform(cfg))
        val_set = DetectionDataset(val_records, label_map)
        loader = _loader(cfg, train_set, info, epoch0)
        steps_per_epoch = len(loader)
        total = cfg.epochs * steps_per_epoch
        total = min(total, cfg.max_steps) if cfg.max_steps > 0 else total
        if epoch0 >= cfg.epochs:
            raise TrainingError(f"nothing to do: {cfg.resume} already finished epoch {epoch0} of {cfg.epochs}; "
                                "raise epochs to train further")
        run_id = _open_run(store, cfg, ckpt) if info.is_main else 0
        run_id = int(distributed.broadcast_object(run_id))
        net = model
        if info.enabled:
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        state = TrainState(cfg=cfg, model=model, net=net, optimizer=optimizer, device=device, spec=spec,
                           label_map=label_map, category_names=[names[c] for c in sorted(label_map, key=label_map.get)],
                           train_set=train_set, val_set=val_set, run_id=run_id,
                           run_dir=run_dir(store.root, run_id), sink=sink, cancel=cancel,
                           store=store if info.is_main else None, dist=info, steps_per_epoch=steps_per_epoch,
                           total_steps=total, step=step, start_step=step, start_epoch=epoch0, best=best)
        state.checkpoints = {k: str(p) for k in ("best", "last") if (p := state.run_dir / f"{k}.pt").is_file()}
        for n in notices:
            state.emit(Notice(n, "info"))
        state.emit(Notice(f"device {device}; images resized to min_size {spec.min_size}, max_size "
                          f"{spec.max_size}; {len(train_set)} train / {len(val_set)} val images"))
        state.emit(RunStarted(run_id, cfg.to_dict(), total, steps_per_epoch))
        state.model.train()
        Trainer(state, loader, default_hooks(state)).run()
        return _finish(state)


def _open_run(store: Store, cfg: TrainConfig, ckpt: dict | None) -> int:
    """The run to record into: the checkpoint's run when resuming in the same project, else a new one."""
    if ckpt is not None and any(r["id"] == int(ckpt["run_id"]) for r in store.runs()):
        run_id = int(ckpt["run_id"])
    else:
        name = cfg.run_name or f"{cfg.model}-{cfg.backbone}"
        run_id = store.create_run(name, cfg.model, cfg.to_dict())
    store.update_run(run_id, status="running")
    return run_id


def _finish(s: TrainState) -> dict:
    summary = run_summary(s)
    ckpt = s.checkpoints.get("best") or s.checkpoints.get("last") or ""
    if s.store is not None:
        s.store.update_run(s.run_id, status=s.status, checkpoint=ckpt or None, summary=summary)
    metrics = summary["metrics"]
    s.emit(RunFinished(s.run_id, s.status, dict(metrics), ckpt, s.message))
    if s.status == "failed":
        raise s.error or TrainingError(s.message)
    return {"run_id": s.run_id, "status": s.status, "map": metrics.get("map", 0.0),
            "map50": metrics.get("map50", 0.0), "metrics": metrics, "checkpoint": ckpt,
            "best_checkpoint": s.checkpoints.get("best", ""), "last_checkpoint": s.checkpoints.get("last", ""),
            "step": s.step, "epoch": s.epoch, "device": str(s.device), "message": s.message}
