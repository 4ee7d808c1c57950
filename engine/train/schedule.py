"""Learning-rate schedule as a pure function of the global step (so a resumed run continues it).

Linear warm-up from ``0.001 * lr`` over ``warmup_steps``, then ``cosine`` (to 1 % of lr at
``total_steps``), ``step`` (times ``step_gamma`` every ``step_epochs`` epochs) or ``constant``.
With a time limit (``max_minutes``) the cosine's progress is the larger of ``step / total_steps``
and ``time_frac`` (elapsed / limit), so the learning rate has annealed when the time is up.
"""

from __future__ import annotations

import math

from engine.config import TrainConfig

SCHEDULES = ("cosine", "step", "constant")


def lr_at(step: int, cfg: TrainConfig, total_steps: int, steps_per_epoch: int, time_frac: float = 0.0) -> float:
    """Learning rate for optimisation step ``step`` (0-based); ``time_frac`` in [0, 1] (see above)."""
    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; expected one of {SCHEDULES}")
    base = cfg.lr
    if cfg.schedule == "cosine":
        t = min(1.0, max(step / total_steps if total_steps > 0 else 0.0, time_frac))  # 0 = open-ended
        lr = base * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))
    elif cfg.schedule == "step":
        epoch = step // max(1, steps_per_epoch)
        lr = base * cfg.step_gamma ** (epoch // max(1, cfg.step_epochs))
    else:
        lr = base
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        alpha = step / cfg.warmup_steps
        lr *= 0.001 * (1 - alpha) + alpha
    return lr
