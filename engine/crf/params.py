"""Parameters of the fully connected CRF (Krähenbühl & Koltun 2011) as DeepLab uses it.

Energy: ``E(x) = sum_i -log P(x_i) + sum_{i<j} [x_i != x_j] k(i, j)`` (Potts) with
``k(i, j) = w_bilateral exp(-|p_i - p_j|^2 / 2 theta_alpha^2 - |I_i - I_j|^2 / 2 theta_beta^2)
          + w_gaussian  exp(-|p_i - p_j|^2 / 2 theta_gamma^2)``,
positions p in pixels, colours I in 0..255 RGB. DeepLab (Chen et al., v1/v2) cross-validated
w_bilateral in 3..6, theta_alpha in 30..100, theta_beta in 3..6 and fixed w_gaussian = 3,
theta_gamma = 3 with 10 mean-field iterations; the defaults sit in those ranges.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

MAX_ITERATIONS = 100

# DeepLab's search ranges, for sliders and docs: field -> (low, high)
DEEPLAB_RANGES: dict[str, tuple[float, float]] = {
    "w_bilateral": (3.0, 6.0),
    "theta_alpha": (30.0, 100.0),
    "theta_beta": (3.0, 6.0),
    "w_gaussian": (3.0, 3.0),
    "theta_gamma": (3.0, 3.0),
    "iterations": (10, 10),
}


@dataclass(frozen=True)
class CrfParams:
    """Kernel weights (>= 0), kernel widths (> 0; theta_alpha/theta_gamma in pixels, theta_beta in RGB
    levels) and the number of mean-field iterations (1..100)."""

    w_bilateral: float = 4.0
    theta_alpha: float = 60.0
    theta_beta: float = 5.0
    w_gaussian: float = 3.0
    theta_gamma: float = 3.0
    iterations: int = 10

    def validate(self) -> CrfParams:
        """Raise ValueError naming the first out-of-range field; return self when all are valid."""
        for name in ("w_bilateral", "w_gaussian", "theta_alpha", "theta_beta", "theta_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"CrfParams.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"CrfParams.{name} must be finite, got {value!r}")
            if name.startswith("w_") and value < 0:
                raise ValueError(f"CrfParams.{name} must be >= 0, got {value!r}")
            if name.startswith("theta_") and value <= 0:
                raise ValueError(f"CrfParams.{name} must be > 0, got {value!r}")
        it = self.iterations
        if isinstance(it, bool) or not isinstance(it, int):
            raise ValueError(f"CrfParams.iterations must be an int, got {it!r}")
        if not 1 <= it <= MAX_ITERATIONS:
            raise ValueError(f"CrfParams.iterations must be in 1..{MAX_ITERATIONS}, got {it}")
        return self

    def to_dict(self) -> dict[str, float | int]:
        """Plain dict of all fields (JSON/YAML friendly)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrfParams:
        """Build and validate from a dict; missing fields take defaults, unknown keys raise ValueError."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown CrfParams field(s): {', '.join(unknown)}")
        return cls(**data).validate()
