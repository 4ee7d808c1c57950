"""Anchor settings as the user types them, checked against the RPN's rules (Qt-free).

torchvision's ``AnchorGenerator`` + ``RPNHead`` need one tuple of sizes per FPN level, the same number of
sizes on every level (the head predicts ``sizes x ratios`` anchors per location with one conv), and as
many levels as the backbone has feature maps. ``anchor_design_config`` returns the job config of
``engine.analysis.anchor_design.anchor_design_job`` or raises ``ValueError`` naming the bad field.
"""

from __future__ import annotations

from engine.analysis.anchor_design import BACKBONE_STRIDES


def parse_sizes(text: str) -> tuple[tuple[int, ...], ...]:
    """'12; 24; 48' or '12, 16; 24, 32' -> one tuple of positive ints per FPN level (';' separates levels)."""
    levels = []
    for part in text.split(";"):
        vals = [v for v in part.replace(" ", ",").split(",") if v]
        if not vals:
            raise ValueError("anchor sizes: every level needs at least one size")
        sizes = tuple(int(float(v)) for v in vals)
        if min(sizes) <= 0:
            raise ValueError("anchor sizes must be positive")
        levels.append(sizes)
    if len({len(s) for s in levels}) != 1:
        raise ValueError("anchor sizes: torchvision's RPN head needs the same number of sizes on every level")
    return tuple(levels)


def parse_ratios(text: str) -> tuple[float, ...]:
    vals = tuple(float(v) for v in text.replace(" ", ",").split(",") if v)
    if not vals or min(vals) <= 0:
        raise ValueError("aspect ratios (height / width) must be positive numbers")
    return vals


def check_levels(sizes: tuple[tuple[int, ...], ...], backbone: str) -> None:
    """One tuple of sizes per FPN level of ``backbone``."""
    strides = BACKBONE_STRIDES[backbone]
    if len(sizes) != len(strides):
        raise ValueError(f"anchor sizes: {len(sizes)} levels given, the {backbone} backbone has "
                         f"{len(strides)} FPN levels")


def anchor_design_config(project: str | None, split: str | None, sizes_text: str, ratios_text: str,
                         backbone: str, min_size: int, max_size: int) -> dict:
    """The anchor-design job config from the editor's fields; ``ValueError`` names the bad one."""
    sizes, ratios = parse_sizes(sizes_text), parse_ratios(ratios_text)
    check_levels(sizes, backbone)
    if max_size < min_size:
        raise ValueError("input size: max must be >= min")
    return {"project": project, "split": split, "anchor_sizes": sizes, "aspect_ratios": ratios,
            "min_size": min_size, "max_size": max_size, "backbone": backbone}
