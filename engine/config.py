"""Training configuration: one flat dataclass, saved with every run and checkpoint.

The GUI's Train panel, the CLI flags and checkpoints all use these field names. Option strings are
``Literal`` types checked once by ``validate()``; which model/backbone pairs exist is the task
registry's business (``engine.tasks``), checked by the training job.

Data selection: ``train_split``/``val_split`` name splits; ``train_ids``/``val_ids`` (image ids),
when non-empty, override them, so k-fold cross-validation and "train on this filter" need no code
path of their own (``engine.data.folds`` turns a fold of a stored assignment into id lists).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, TypeVar, get_args, get_type_hints

Optimizer = Literal["sgd", "adamw"]
Norm = Literal["auto", "bn", "frozen", "gn"]
Schedule = Literal["cosine", "step", "constant"]
RpnLoss = Literal["ce", "focal"]
RoiLoss = Literal["ce", "focal", "ohem"]
Device = str  # auto | cpu | cuda | cuda:N | mps (checked by engine.device.select_device)


# Options only some model families read; a task lists the ones it reads in ``Task.options`` and the
# training job refuses a non-default value of any other (never silently ignored).
MODEL_OPTIONS = ("roi_samples", "rpn_loss", "roi_loss", "ohem_k", "focal_alpha", "focal_gamma", "box_loss_beta",
                 "trainable_backbone_layers")


class ConfigError(ValueError):
    """An option has a value that cannot work; ``str(e)`` names the option and the reason."""


D = TypeVar("D")


def strict_from_dict(cls: type[D], d: dict[str, Any], what: str, error: type[ValueError] = ValueError) -> D:
    """``cls(**d)`` for a dataclass; missing keys take the defaults, unknown keys raise ``error`` naming them
    (an option or a saved spec key is never ignored silently)."""
    unknown = sorted(set(d) - {f.name for f in fields(cls)})
    if unknown:
        raise error(f"unknown {what}: {', '.join(unknown)}")
    return cls(**d)


@dataclass
class TrainConfig:
    project: str = ""  # project folder
    model: str = "faster_rcnn"  # a task name from the registry (`anchorlab models`)
    backbone: str = "tiny"  # one of the task's backbones
    pretrained: bool = True  # use local pretrained weights if present
    weights: str = ""  # a user's own state dict (.pt) to start from
    trainable_backbone_layers: int = -1  # pretrained backbones: stages trained (-1 = torchvision's 3)
    train_split: str = "train"
    val_split: str = "val"
    train_ids: list[int] = field(default_factory=list)  # explicit image ids; override train_split when set
    val_ids: list[int] = field(default_factory=list)  # explicit image ids; override val_split when set
    epochs: int | None = None  # None = as many as fit: unbounded under max_minutes, else 10
    batch_size: int = 4
    lr: float = 0.001  # AdamW from scratch (tiny); try 1e-4 for pretrained backbones, ~0.01 with sgd
    momentum: float = 0.9
    optimizer: Optimizer = "adamw"  # AdamW learned the demo ~2x faster than SGD in the quality bench
    weight_decay: float = 1e-4  # L2
    l1: float = 0.0  # L1 coefficient, added as loss_l1
    roi_samples: int = 0  # RoIs sampled per image for the box head; 0 = 128 for tiny (2x faster on CPU), else 512
    rpn_loss: RpnLoss = "ce"  # Faster R-CNN objectness: ce (256-anchor sample) | focal (all anchors, RetinaNet)
    roi_loss: RoiLoss = "ce"  # Faster R-CNN classifier: ce | focal | ohem (hardest ohem_k RoIs per image)
    ohem_k: int = 128  # roi_loss ohem: RoIs kept per image
    focal_alpha: float = 0.25  # focal: weight of foreground (background 1 - alpha); -1 = no weighting
    focal_gamma: float = 2.0  # focal: exponent of (1 - p_t); 0 = alpha-weighted CE
    box_loss_beta: float = 1 / 9  # smooth L1 beta of the Faster R-CNN box losses (torchvision's 1/9; 0 = L1)
    norm: Norm = "auto"  # auto = frozen with pretrained weights, else bn (trainable) | bn | frozen | gn
    schedule: Schedule = "cosine"
    step_epochs: int = 8  # step schedule: decay every N epochs
    step_gamma: float = 0.1
    warmup_steps: int = 50
    min_size: int = 0  # 0 = from the data (median short side), never upscaling small images
    max_size: int = 0  # 0 = from the data
    augment_flip: bool = True
    augment_scale: bool = True  # scale jitter
    augment_crop: bool = False
    augment_color: bool = True
    early_stop: bool = False
    early_stop_metric: str = ""  # "" = the task's selection metric; or val_loss[_<component>]
    early_stop_patience: int = 5
    early_stop_min_delta: float = 0.0
    overfit_one_batch: bool = False  # sanity mode: one batch, augmentation off
    overfit_steps: int = 50
    device: Device = "auto"
    seed: int = 0
    workers: int = 0
    sync_bn: bool = False  # DDP on CUDA GPUs: BatchNorm statistics over the global batch (SyncBatchNorm)
    eval_every: int = 0  # epochs between evaluations; 0 = auto: every epoch, or ~10 % of a time budget
    max_minutes: float = 0.0  # 0 = no limit; alone it means "train for this long"
    max_steps: int = 0  # 0 = no limit (tests, smoke runs)
    max_images: int = 0  # 0 = all images of the split (tests)
    skip_bad_images: bool = True  # unreadable images are reported and left out (else the run refuses)
    resume: str = ""  # checkpoint path to resume from
    run_name: str = ""
    xray_image: int = 0  # image id to capture an X-ray snapshot of during training (0 = off)
    xray_every: int = 0  # steps between snapshots (0 = off)
    bn_stats_every: int = 0  # steps between BatchNorm/GroupNorm statistics records (engine.internals.bn_stats; 0 = off)
    extra: dict = field(default_factory=dict)  # task-specific options (see each task's docstring)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> TrainConfig:
        return strict_from_dict(TrainConfig, d, "training options", ConfigError)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first option that cannot work; returns self."""
        hints = get_type_hints(TrainConfig)
        for f in fields(self):
            value = getattr(self, f.name)
            choices = get_args(hints[f.name])
            if choices and all(isinstance(c, str) for c in choices) and value not in choices:
                raise ConfigError(f"{f.name} {value!r} is not one of {', '.join(choices)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, not {value}")
        positive = ("batch_size", "lr", "overfit_steps", "early_stop_patience", "step_epochs", "ohem_k")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0 (got {getattr(self, name)})")
        if self.epochs is not None and self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1 (got {self.epochs}); leave it out to train until --max-minutes")
        non_negative = ("eval_every", "weight_decay", "l1", "momentum", "warmup_steps", "min_size", "max_size",
                        "max_minutes", "max_steps", "max_images", "workers", "roi_samples", "xray_every",
                        "xray_image", "early_stop_min_delta", "seed", "focal_gamma", "box_loss_beta")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0 (got {getattr(self, name)})")
        if 0 < self.min_size < 16 or 0 < self.max_size < 16:
            raise ConfigError(f"min_size/max_size must be 0 (from the data) or >= 16 (got {self.min_size}, "
                              f"{self.max_size})")
        if self.min_size and self.max_size and self.max_size < self.min_size:
            raise ConfigError(f"max_size {self.max_size} is smaller than min_size {self.min_size}")
        if max(self.min_size, self.max_size) > 65536:
            raise ConfigError("min_size/max_size above 65536 px cannot fit in any memory")
        if not -1 <= self.trainable_backbone_layers <= 6:
            raise ConfigError(f"trainable_backbone_layers must be -1 (auto) or 0-6 (got "
                              f"{self.trainable_backbone_layers})")
        if not (0 <= self.focal_alpha <= 1 or self.focal_alpha == -1):
            raise ConfigError(f"focal_alpha must be in [0, 1], or -1 for no weighting (got {self.focal_alpha})")
        if not 0 < self.step_gamma <= 1:
            raise ConfigError(f"step_gamma must be in (0, 1] (got {self.step_gamma})")
        overlap = set(self.train_ids) & set(self.val_ids)
        if overlap:
            raise ConfigError(f"train_ids and val_ids share {len(overlap)} images (e.g. {min(overlap)})")
        return self
