"""Test-only trainer hooks (fault injection, diagnostics). They plug in through ``train_job(hooks=...)``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from engine.train.trainer import Hook, TrainState


class InjectNaN(Hook):
    """Makes one loss component NaN at optimisation step ``at_step`` (1-based)."""

    def __init__(self, at_step: int, key: str | None = None) -> None:
        self.at_step, self.key = at_step, key

    def after_forward(self, s: TrainState, losses: dict[str, torch.Tensor]) -> None:
        if s.step + 1 == self.at_step:
            key = self.key or next(iter(losses))
            losses[key] = losses[key] * float("nan")


class ParamDigestHook(Hook):
    """After training, each rank writes ``rank<r>.json`` with the sum and a sha1 of its parameters.
    Parameters only: under DDP each rank's BatchNorm running statistics come from its own batches."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)

    def after_train(self, s: TrainState) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        h = hashlib.sha1()
        total = 0.0
        for name, p in sorted(s.model.named_parameters()):
            t = p.detach().cpu().contiguous()
            h.update(name.encode())
            h.update(t.numpy().tobytes())
            total += float(t.double().sum())
        (self.out / f"rank{s.dist.rank}.json").write_text(json.dumps({"rank": s.dist.rank, "step": s.step,
                                                                      "sum": total, "sha1": h.hexdigest()}))
