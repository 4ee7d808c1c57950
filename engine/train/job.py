"""The training job: ``train_job(config, sink, cancel) -> dict`` — the GUI, the CLI and torchrun all call it.

``config`` is ``TrainConfig.to_dict()``; ``config["model"]`` names a registered task
(``engine.tasks.registry``), which supplies the model, data, metrics and predictions. The job opens
its own Store, snapshots the train and val images (split names or explicit id lists), checks every
image (bad ones reported, skipped when ``skip_bad_images``), builds the model from the task's spec,
records a run in the store (rank 0 only), runs the ``Trainer`` with the default hooks and returns::

    {"run_id", "task", "status", "metrics": {the task's metrics of the best checkpoint},
     <each metric at top level, e.g. "map", "map50">, "checkpoint": best.pt (or last.pt if never
     evaluated), "best_checkpoint", "last_checkpoint", "step", "epoch", "device", "message"}

Epochs: ``epochs`` when given; else unbounded under ``max_minutes`` (the budget alone decides, as
Ultralytics' ``time`` does) and 10 without one. A failed run (non-finite loss, out of memory) is
recorded and then raised as ``TrainingError``; Stop is not an error: status 'stopped', last.pt
written with the position inside the epoch so ``resume`` continues at the next batch.

``hooks`` (keyword) appends extra hooks after the defaults — tests use it for fault injection.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from engine.config import MODEL_OPTIONS, ConfigError, TrainConfig
from engine.data.check import find_bad_images
from engine.data.dataset import SampleRecord, snapshot_ids, snapshot_split
from engine.data.sampler import EpochSampler
from engine.device import DeviceError, select_device
from engine.events import Notice, RunFinished, RunStarted
from engine.internals.bn_stats import BNStatsRecorder
from engine.jobs import CancelToken, Sink
from engine.losses.regularization import param_groups
from engine.project.store import Store
from engine.tasks.base import Task, TaskDataError
from engine.tasks.checkpoint import labels_of, load_checkpoint, load_user_weights, run_dir
from engine.tasks.registry import UnknownTask, get_task, task_names
from engine.train import distributed
from engine.train.hooks import default_hooks, run_summary
from engine.train.trainer import Hook, Trainer, TrainingError, TrainState
from engine.train.validation import validation_losses
from engine.xray.training import on_step as xray_snapshot

UNBOUNDED_EPOCHS = 1_000_000


class RepeatBatch:
    """The same batch ``steps`` times: the 'overfit one batch' loader."""

    def __init__(self, batch: tuple[list, list], steps: int) -> None:
        self.batch, self.steps = batch, steps

    def __iter__(self):  # noqa: ANN204
        return iter([self.batch] * self.steps)

    def __len__(self) -> int:
        return self.steps


def _validate(cfg: TrainConfig) -> Task:
    try:
        cfg.validate()
        task = get_task(cfg.model)
    except (ConfigError, UnknownTask) as e:
        raise TrainingError(str(e)) from e
    if cfg.backbone not in task.backbones:
        raise TrainingError(f"{task.name} has no backbone {cfg.backbone!r}; expected one of "
                            f"{', '.join(task.backbones)}")
    defaults = TrainConfig()
    for name in set(MODEL_OPTIONS) - set(getattr(task, "options", ())):
        if getattr(cfg, name) != getattr(defaults, name):
            raise TrainingError(f"--{name.replace('_', '-')} does not apply to {task.name} (it is read by "
                                f"{', '.join(n for n in task_names() if name in getattr(get_task(n), 'options', ()))})")
    metric = cfg.early_stop_metric
    if metric and metric not in task.metric_names and not metric.startswith("val_loss"):
        raise TrainingError(f"unknown early_stop_metric {metric!r} for {task.name}; expected one of "
                            f"{', '.join(task.metric_names)} or val_loss[_<component>]")
    return task


def _optimizer(cfg: TrainConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def _records(store: Store, cfg: TrainConfig, ids: list[int], split: str) -> list[SampleRecord]:
    if ids:
        return snapshot_ids(store, ids, cfg.max_images)
    return snapshot_split(store, split, cfg.max_images) if split else []


def _drop_bad(records: list[SampleRecord], cfg: TrainConfig, what: str, cancel: CancelToken,
              notices: list[str]) -> list[SampleRecord]:
    bad = find_bad_images(records, cancel)
    if not bad:
        return records
    listing = "; ".join(f"{r.path.name} (id {r.image_id}): {why}" for r, why in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    if not cfg.skip_bad_images:
        raise TrainingError(f"{len(bad)} {what} images cannot be read: {listing}{more} "
                            "(skip them with --skip-bad-images)")
    notices.append(f"skipping {len(bad)} unreadable {what} images: {listing}{more}")
    skip = {r.image_id for r, _ in bad}
    return [r for r in records if r.image_id not in skip]


def _loader(task: Task, cfg: TrainConfig, train_set: torch.utils.data.Dataset, info: distributed.DistInfo
            ) -> DataLoader | RepeatBatch:
    if cfg.overfit_one_batch:
        return RepeatBatch(task.collate([train_set[i] for i in range(len(train_set))]), max(1, cfg.overfit_steps))
    drop_last = len(train_set) > cfg.batch_size * info.world_size
    sampler = EpochSampler(len(train_set), cfg.batch_size, cfg.seed, info.rank, info.world_size, drop_last)
    gen = torch.Generator().manual_seed(cfg.seed * 1009)  # worker seeds; the global RNG stays the augmentations'
    return DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, collate_fn=task.collate,
                      num_workers=cfg.workers, persistent_workers=cfg.workers > 0, drop_last=drop_last,
                      generator=gen)


def _plan(cfg: TrainConfig, steps_per_epoch: int) -> tuple[int, int]:
    """(epochs, total_steps); total 0 = open-ended (a pure time budget)."""
    epochs = cfg.epochs or (UNBOUNDED_EPOCHS if cfg.max_minutes > 0 else 10)
    total = 0 if epochs == UNBOUNDED_EPOCHS else epochs * steps_per_epoch
    if cfg.max_steps > 0:
        total = min(total, cfg.max_steps) if total else cfg.max_steps
    return epochs, total


def train_job(config: dict, sink: Sink, cancel: CancelToken, hooks: list[Hook] | None = None) -> dict:
    """Train the task named by ``config["model"]`` as described in the module docstring."""
    try:
        cfg = TrainConfig.from_dict(config)
    except (ConfigError, TypeError) as e:
        raise TrainingError(str(e)) from e
    task = _validate(cfg)
    if cfg.overfit_one_batch:  # sanity mode: one fixed batch, no augmentation, evaluated on itself
        cfg = dataclasses.replace(cfg, epochs=1, eval_every=1, augment_flip=False, augment_scale=False,
                                  augment_crop=False, augment_color=False)
    info = distributed.current()
    try:
        device = select_device(cfg.device, info.local_rank)
    except DeviceError as e:
        raise TrainingError(str(e)) from e
    notices: list[str] = []
    with Store(cfg.project) as store:
        labels = task.label_space(store)
        train_records = _records(store, cfg, cfg.train_ids, cfg.train_split)
        val_records = _records(store, cfg, cfg.val_ids, cfg.val_split)
        if not train_records:
            raise TrainingError(f"split {cfg.train_split!r} of {cfg.project} has no images")
        if (cfg.val_split or cfg.val_ids) and not val_records:
            notices.append(f"the validation images ({cfg.val_split or 'val_ids'}) are empty: no evaluation, "
                           "best.pt is never written and early stopping cannot trigger")
        if not cfg.train_ids and cfg.val_split and cfg.val_split == cfg.train_split:
            notices.append(f"validating on the training split {cfg.val_split!r}: metrics will look better "
                           "than on unseen images")
        train_records = _drop_bad(train_records, cfg, "training", cancel, notices)
        val_records = _drop_bad(val_records, cfg, "validation", cancel, notices)
        if cfg.overfit_one_batch:
            train_records = [r for r in train_records if r.annotations][:cfg.batch_size] or train_records[:1]
            val_records = train_records
        try:
            task.check_data(train_records, labels)
        except TaskDataError as e:
            raise TrainingError(f"cannot train {task.name} on {cfg.project}: {e}") from e
        ckpt = load_checkpoint(cfg.resume) if cfg.resume else None
        if ckpt is not None:
            if ckpt["task"] != task.name:
                raise TrainingError(f"cannot resume {task.name} from {cfg.resume}: it is a {ckpt['task']} checkpoint")
            if labels_of(ckpt).label_map != labels.label_map:
                raise TrainingError(f"cannot resume from {cfg.resume}: the project's categories changed since "
                                    "that checkpoint was written")
        try:
            spec = task.spec_from_dict(ckpt["spec"]) if ckpt else task.spec_from_data(cfg, train_records, labels)
        except ValueError as e:  # a bad task option (e.g. in cfg.extra), TaskDataError included: one line
            raise TrainingError(f"cannot train {task.name}: {e}") from e
        describe_data = getattr(task, "data_notices", None)  # optional (engine.tasks.base)
        data_notices = describe_data(train_records, labels, spec) if describe_data is not None else []
        torch.manual_seed(cfg.seed)
        model, build_notices = task.build(spec)
        notices = build_notices + notices
        if cfg.weights and ckpt is None:
            notices += load_user_weights(model, cfg.weights)
        try:
            model, sync_notices = distributed.sync_batchnorm(model, info, device, cfg.sync_bn)
        except distributed.SyncBatchNormError as e:
            raise TrainingError(str(e)) from e
        notices += sync_notices
        model.to(device)
        optimizer = _optimizer(cfg, model)
        step = epoch0 = batches0 = 0
        best: dict = {}
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            if ckpt.get("optimizer"):
                optimizer.load_state_dict(ckpt["optimizer"])
            step, best = int(ckpt["step"]), dict(ckpt.get("best") or {})
            batches0 = int(ckpt.get("epoch_batches", 0))
            epoch0 = int(ckpt["epoch"]) + (0 if batches0 else 1)
            where = f"batch {batches0 + 1} of epoch {epoch0 + 1}" if batches0 else f"epoch {epoch0 + 1}"
            # the weights come from the checkpoint: what building said about initial weights no longer applies
            notices = [f"resumed from {cfg.resume} at step {step} ({where} next)",
                       *(n for n in notices if n not in build_notices)]
        torch.manual_seed(cfg.seed + info.rank + 7919 * epoch0)
        train_set = task.dataset(train_records, labels, cfg, train=True)
        val_set = task.dataset(val_records, labels, cfg, train=False)
        loader = _loader(task, cfg, train_set, info)
        steps_per_epoch = len(loader)
        epochs, total = _plan(cfg, steps_per_epoch)
        if epoch0 >= epochs:
            raise TrainingError(f"nothing to do: {cfg.resume} already finished epoch {epoch0} of {epochs}; "
                                "raise epochs to train further")
        run_id = _open_run(store, cfg, ckpt) if info.is_main else 0
        run_id = int(distributed.broadcast_object(run_id))
        net = model
        if info.enabled:
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        state = TrainState(cfg=cfg, task=task, model=model, net=net, optimizer=optimizer, device=device, spec=spec,
                           labels=labels, train_set=train_set, val_set=val_set, run_id=run_id,
                           run_dir=run_dir(store.root, run_id), sink=sink, cancel=cancel,
                           store=store if info.is_main else None, dist=info, steps_per_epoch=steps_per_epoch,
                           total_steps=total, epochs=epochs, step=step, start_step=step, start_epoch=epoch0,
                           epoch_batches=batches0, best=best)
        state.checkpoints = {k: str(p) for k in ("best", "last") if (p := state.run_dir / f"{k}.pt").is_file()}
        for n in notices + data_notices:
            state.emit(Notice(n, "info"))
        state.emit(Notice(f"{task.name}: device {device}; {len(train_set)} train / {len(val_set)} val images"))
        state.emit(RunStarted(run_id, cfg.to_dict(), total, steps_per_epoch))
        val_loader = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, collate_fn=task.collate)
        state.model.train()
        hook_list = default_hooks(
            state, evaluate=lambda: task.evaluate(state.model, val_loader, device, cancel),
            val_losses=lambda: validation_losses(state.model, val_loader, device, cancel, seed=cfg.seed),
            snapshot=xray_snapshot if "xray" in task.capabilities else None)
        hook_list += [BNStatsRecorder(cfg.bn_stats_every)] if cfg.bn_stats_every > 0 else []  # duck-typed Hook
        Trainer(state, loader, hook_list + list(hooks or [])).run()
        return _finish(state)


def _open_run(store: Store, cfg: TrainConfig, ckpt: dict | None) -> int:
    """The run to record into: the checkpoint's run when resuming in the same project, else a new one."""
    if ckpt is not None and any(r.id == int(ckpt["run_id"]) for r in store.runs()):
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
    top = {name: float(metrics.get(name, 0.0)) for name in s.task.metric_names}
    return {"run_id": s.run_id, "task": s.task.name, "status": s.status, **top, "metrics": metrics,
            "checkpoint": ckpt, "best_checkpoint": s.checkpoints.get("best", ""),
            "last_checkpoint": s.checkpoints.get("last", ""), "step": s.step, "epoch": s.epoch,
            "device": str(s.device), "message": s.message}

