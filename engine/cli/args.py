"""argparse value types that refuse bad numbers with one line (``--images -5``, ``--score nan``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from e
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def finite_float(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """An argparse ``type``: a finite number (no nan/inf) within [low, high] when given."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from e
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value:g}")
        return value

    parse.__name__ = "number"
    return parse


score = finite_float(0.0, 1.0)  # for --score flags: a detection score threshold in [0, 1]
