"""k-fold assignment of a project's images, stratified by class presence, fixed by a seed.

``stratified_folds(records, k, seed)`` -> {image_id: fold}. Multi-label iterative stratification
(Sechidis et al. 2011, simplified): images are taken rarest-class first, each goes to the fold that
most lacks that class (ties: the fold with the fewest images, then the lowest index), so every
fold sees every class in proportion; images without objects are spread evenly last. The same
records, k and seed always give the same assignment. ``fold_split(assignment, fold)`` turns one
fold into ``(train_ids, val_ids)`` for ``TrainConfig.train_ids/val_ids``.

Assignments are stored in the project (``save_folds``/``load_folds``: store meta ``cv_folds``).
"""

from __future__ import annotations

import json
import random
from collections import Counter

from engine.data.dataset import SampleRecord
from engine.project.store import Store

META_KEY = "cv_folds"


def classes_of(rec: SampleRecord) -> set[int]:
    """Categories present in an image (its objects' categories) plus its tags (as negative ids)."""
    return {a.category_id for a in rec.annotations} | {-t - 1 for t in rec.tags}


def stratified_folds(records: list[SampleRecord], k: int, seed: int = 0) -> dict[int, int]:
    if k < 2:
        raise ValueError(f"k-fold needs k >= 2 (got {k})")
    if len(records) < k:
        raise ValueError(f"{k} folds need at least {k} images (got {len(records)})")
    rng = random.Random(seed)
    recs = list(records)
    rng.shuffle(recs)
    total = Counter(c for r in recs for c in classes_of(r))
    want = {c: n / k for c, n in total.items()}  # per fold
    have = [Counter() for _ in range(k)]
    sizes = [0] * k
    out: dict[int, int] = {}
    labeled = [r for r in recs if classes_of(r)]
    unlabeled = [r for r in recs if not classes_of(r)]
    labeled.sort(key=lambda r: min(total[c] for c in classes_of(r)))  # stable: the shuffle breaks ties
    for r in labeled:
        rare = min(classes_of(r), key=lambda c: (total[c], c))
        fold = min(range(k), key=lambda f: (have[f][rare] - want[rare], sizes[f], f))
        out[r.image_id] = fold
        sizes[fold] += 1
        have[fold].update(classes_of(r))
    for r in unlabeled:
        fold = min(range(k), key=lambda f: (sizes[f], f))
        out[r.image_id] = fold
        sizes[fold] += 1
    return out


def fold_split(assignment: dict[int, int], fold: int) -> tuple[list[int], list[int]]:
    """(train ids, val ids) of ``fold``: its images validate, all others train."""
    val = sorted(i for i, f in assignment.items() if f == fold)
    train = sorted(i for i, f in assignment.items() if f != fold)
    if not val:
        raise ValueError(f"fold {fold} is empty")
    return train, val


def save_folds(store: Store, k: int, seed: int, assignment: dict[int, int]) -> None:
    store.set_meta(META_KEY, json.dumps({"k": k, "seed": seed, "assignment": {str(i): f for i, f in
                                                                               sorted(assignment.items())}}))


def load_folds(store: Store) -> tuple[int, int, dict[int, int]] | None:
    """(k, seed, assignment) stored in the project, or None."""
    raw = store.get_meta(META_KEY)
    if not raw:
        return None
    d = json.loads(raw)
    return int(d["k"]), int(d["seed"]), {int(i): int(f) for i, f in d["assignment"].items()}
