"""k-fold cross-validation and model selection: ``cv_job(config, sink, cancel) -> dict``.

``config``: ``{"project", "folds": 5, "seed": 0, "splits": ["train", "val"], "base": {TrainConfig
fields}, "configs": [{overrides}, ...] (default [{}]), "max_minutes_per_fold": 0}``. The images of
``splits`` are assigned to folds (``engine.data.folds``, stratified by class presence, stored in
the project); every candidate config trains one model per fold (train on k-1 folds, validate on
the held-out one — through ``TrainConfig.train_ids/val_ids``, the ordinary training path) and is
scored by the task's selection metric of its best checkpoint. Result::

    {"metric": name, "higher_is_better": bool, "folds_k": k, "seed": s,
     "configs": [{"config": overrides, "folds": [{"fold", "train_images", "val_images", "value",
                  "run_id", "checkpoint"}], "mean", "std"}], "best": index}

Under ``torchrun`` each rank trains folds ``rank, rank + world, ...`` single-process (one model
per process) and rank 0 gathers the results; without it folds run one after another.
"""

from __future__ import annotations

import math
from typing import Any

from engine.config import TrainConfig
from engine.data.dataset import snapshot_split
from engine.data.folds import fold_split, save_folds, stratified_folds
from engine.events import Notice, Progress
from engine.jobs import CancelToken, Sink
from engine.project.store import Store
from engine.tasks.registry import get_task
from engine.train import distributed
from engine.train.job import train_job


def assign_folds(project: str, k: int, seed: int, splits: list[str]) -> dict[int, int]:
    """Stratified assignment of the images of ``splits``; stored in the project."""
    with Store(project) as store:
        records = [r for s in splits for r in snapshot_split(store, s)]
        assignment = stratified_folds(records, k, seed)
        save_folds(store, k, seed, assignment)
    return assignment


def _stats(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def cv_job(config: dict, sink: Sink, cancel: CancelToken) -> dict:
    project = str(config["project"])
    k, seed = int(config.get("folds", 5)), int(config.get("seed", 0))
    base = dict(config.get("base") or {})
    candidates: list[dict[str, Any]] = list(config.get("configs") or [{}])
    minutes = float(config.get("max_minutes_per_fold", 0) or 0)
    for cand in candidates:  # refuse a bad candidate before anything trains
        TrainConfig.from_dict({**base, **cand, "project": project}).validate()
    task = get_task(TrainConfig.from_dict({**base, **candidates[0], "project": project}).model)
    assignment = assign_folds(project, k, seed, list(config.get("splits") or ["train", "val"]))
    info = distributed.env_info()
    jobs = [(c, f) for c in range(len(candidates)) for f in range(k)]
    mine = jobs[info.rank::info.world_size]
    results: list[dict] = []
    for n, (c, f) in enumerate(mine):
        cancel.check()
        train_ids, val_ids = fold_split(assignment, f)
        sink(Progress(n, len(mine), f"config {c + 1}/{len(candidates)}, fold {f + 1}/{k}"))
        cfg = {**base, **candidates[c], "project": project, "train_ids": train_ids, "val_ids": val_ids,
               "run_name": f"cv{k}-c{c}-f{f}"}
        if minutes > 0:
            cfg["max_minutes"] = minutes
        res = train_job(cfg, sink, cancel)
        metric = task.selection_metric if not cfg.get("early_stop_metric") else cfg["early_stop_metric"]
        value = float(res["metrics"].get(metric, float("nan")))
        results.append({"config_index": c, "fold": f, "train_images": len(train_ids), "val_images": len(val_ids),
                        "value": value, "run_id": res["run_id"], "checkpoint": res["checkpoint"],
                        "status": res["status"]})
        sink(Notice(f"config {c + 1} fold {f + 1}: {metric} = {value:.4f}"))
    if info.enabled:
        results = distributed.gather_results(results)
    sink(Progress(len(mine), len(mine), "cross-validation done"))
    out = []
    for c, cand in enumerate(candidates):
        folds = sorted((r for r in results if r["config_index"] == c), key=lambda r: r["fold"])
        mean, std = _stats([r["value"] for r in folds])
        out.append({"config": cand, "folds": [{k2: v for k2, v in r.items() if k2 != "config_index"} for r in folds],
                    "mean": mean, "std": std})
    sign = 1 if task.higher_is_better else -1
    best = max(range(len(out)), key=lambda i: sign * out[i]["mean"] if math.isfinite(out[i]["mean"]) else -math.inf)
    return {"metric": task.selection_metric, "higher_is_better": task.higher_is_better, "folds_k": k, "seed": seed,
            "configs": out, "best": best}
