"""Fine-tuning torchvision detectors as torchvision does: frozen BatchNorm and 3 trainable stages with
pretrained weights; trainable norms from scratch; options that do not apply are refused; --weights."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops.misc import FrozenBatchNorm2d

from engine.config import TrainConfig
from engine.jobs import CancelToken, Collector
from engine.models.faster_rcnn import TORCHVISION, DetectorSpec, build_faster_rcnn, hub_checkpoint_dir
from engine.tasks.checkpoint import load_model
from engine.train.job import train_job
from engine.train.trainer import TrainingError

BACKBONE = "mobilenet_v3_large_fpn"


def _fake_pretrained(monkeypatch, tmp_path) -> dict[str, torch.Tensor]:
    """A 'COCO' state dict on disk where torchvision's download would put it (distinct BN statistics)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(123)
    model, _ = build_faster_rcnn(DetectorSpec(backbone=BACKBONE, num_classes=91, norm="frozen",
                                              trainable_backbone_layers=6, pretrained=False))
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith(("running_mean", "running_var")):
            state[k] = torch.rand_like(v) + 0.5
    path = hub_checkpoint_dir() / TORCHVISION[BACKBONE][0].url.rsplit("/", 1)[-1]
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


def _cfg(project, **kw) -> dict:
    return TrainConfig(project=str(project), backbone=BACKBONE, epochs=1, max_steps=2, batch_size=2, max_images=4,
                       min_size=128, max_size=192, val_split="", warmup_steps=0, lr=0.01, optimizer="sgd",
                       device="cpu", **kw).to_dict()


def test_pretrained_backbone_keeps_its_statistics_and_frozen_stages(demo_copy, tmp_path, monkeypatch) -> None:
    loaded = _fake_pretrained(monkeypatch, tmp_path)
    sink = Collector()
    res = train_job(_cfg(demo_copy), sink, CancelToken())
    assert any("frozen, 3 of 6 stages trained" in getattr(e, "message", "") for e in sink.events)
    _, model, spec, _, _ = load_model(res["last_checkpoint"])
    assert spec.norm == "frozen" and spec.trainable_backbone_layers == 3
    norms = [n for n, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)]
    assert norms and all(n.startswith("backbone.") for n in norms)
    after = model.state_dict()
    for n in norms:  # weight, bias, running mean and variance of every backbone norm: as loaded
        for t in ("weight", "bias", "running_mean", "running_var"):
            assert torch.equal(after[f"{n}.{t}"], loaded[f"{n}.{t}"]), f"{n}.{t}"
    rebuilt, _ = build_faster_rcnn(spec)
    frozen = [n for n, p in rebuilt.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith("backbone.body.") for n in frozen)
    for n in frozen:
        assert torch.equal(after[n], loaded[n]), n
    trained = [n for n, p in rebuilt.named_parameters() if p.requires_grad and n.startswith("backbone.body.")]
    assert trained and any(not torch.equal(after[n], loaded[n]) for n in trained)
    assert not torch.equal(after["rpn.head.conv.0.0.weight"], loaded["rpn.head.conv.0.0.weight"])  # heads learn


def test_from_scratch_trains_every_stage_with_batchnorm(demo_copy, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    _, model, spec, _, _ = load_model(train_job(_cfg(demo_copy), Collector(), CancelToken())["last_checkpoint"])
    assert spec.norm == "bn" and not spec.pretrained
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    rebuilt, _ = build_faster_rcnn(spec)
    assert all(p.requires_grad for p in rebuilt.parameters())
    with pytest.raises(TrainingError, match="trainable_backbone_layers applies to pretrained weights"):
        train_job(_cfg(demo_copy, trainable_backbone_layers=2), Collector(), CancelToken())
    with pytest.raises(TrainingError, match="tiny backbone always trains from scratch"):
        train_job({**_cfg(demo_copy, trainable_backbone_layers=2), "backbone": "tiny"}, Collector(), CancelToken())


def test_user_weights_file_loads_or_names_the_mismatch(demo_copy, tmp_path) -> None:
    model, _ = build_faster_rcnn(DetectorSpec(num_classes=4, min_size=128, max_size=192, pretrained=False))
    good = tmp_path / "mine.pt"
    torch.save(model.state_dict(), good)
    cfg = {**_cfg(demo_copy, weights=str(good)), "backbone": "tiny", "max_steps": 1}
    sink = Collector()
    train_job(cfg, sink, CancelToken())
    assert any(f"from {good}" in getattr(e, "message", "") for e in sink.events)
    other, _ = build_faster_rcnn(DetectorSpec(num_classes=9, min_size=128, max_size=192, pretrained=False))
    bad = tmp_path / "other.pt"
    torch.save(other.state_dict(), bad)
    with pytest.raises(Exception, match=r"does not fit this model: roi_heads.box_predictor.cls_score.weight has "
                                        r"shape \(9, 256\), the model needs \(4, 256\)"):
        train_job({**cfg, "weights": str(bad)}, Collector(), CancelToken())
