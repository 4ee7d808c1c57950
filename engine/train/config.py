"""Training configuration: one flat dataclass, saved with every run and checkpoint.

The GUI's Train panel, the CLI flags and checkpoints all use these field names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class TrainConfig:
    project: str = ""  # project folder
    model: str = "faster_rcnn"  # faster_rcnn (later: yolo_v1, deeplab, multilabel)
    backbone: str = "tiny"  # tiny | mobilenet_v3_large_fpn | resnet50_fpn
    pretrained: bool = True  # use local pretrained weights if present
    train_split: str = "train"
    val_split: str = "val"
    epochs: int = 10
    batch_size: int = 4
    lr: float = 0.001  # AdamW from scratch (tiny); try 1e-4 for pretrained backbones, ~0.01 with sgd
    momentum: float = 0.9
    optimizer: str = "adamw"  # sgd | adamw (AdamW learned the demo ~2x faster than SGD in the quality bench)
    weight_decay: float = 1e-4  # L2
    l1: float = 0.0  # L1 coefficient, added as loss_l1
    roi_samples: int = 0  # RoIs sampled per image for the box head; 0 = 128 for tiny (2x faster on CPU), else 512
    norm: str = "bn"  # bn (trainable) | frozen | gn (tiny backbone only)
    schedule: str = "cosine"  # cosine | step | constant
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
    early_stop_metric: str = "map50"
    early_stop_patience: int = 5
    early_stop_min_delta: float = 0.0
    overfit_one_batch: bool = False  # sanity mode: one batch, augmentation off
    overfit_steps: int = 50
    device: str = "auto"  # auto | cuda | mps | cpu
    seed: int = 0
    workers: int = 0
    eval_every: int = 1  # epochs
    max_minutes: float = 0.0  # 0 = no limit; stop cleanly after this
    max_steps: int = 0  # 0 = no limit (tests, smoke runs)
    max_images: int = 0  # 0 = all images of the split (tests)
    resume: str = ""  # checkpoint path to resume from
    run_name: str = ""
    xray_image: int = 0  # image id to capture an X-ray snapshot of during training (0 = off)
    xray_every: int = 0  # steps between snapshots (0 = off)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(d: dict) -> TrainConfig:
        known = {f.name for f in fields(TrainConfig)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training options: {', '.join(sorted(unknown))}")
        return TrainConfig(**d)
