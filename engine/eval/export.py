"""Small helpers the reports share to write JSON and CSV: NaN -> None, file-safe names, CSV rows."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


def json_safe(value: Any, digits: int = 6) -> Any:
    """``value`` with numpy scalars/arrays as Python numbers/lists, floats rounded, NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): json_safe(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, digits) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), digits)
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return round(v, digits) if math.isfinite(v) else None
    return value


def cell(value: Any, digits: int = 6) -> Any:
    """A CSV cell: NaN/None -> empty, floats rounded."""
    v = json_safe(value, digits)
    return "" if v is None else v


def slugs(names: Sequence[str]) -> list[str]:
    """File-safe, unique stems for class names (``cat 1/2`` -> ``cat_1_2``; clashes get ``_<index>``)."""
    out: list[str] = []
    for i, name in enumerate(names):
        s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or f"class{i + 1}"
        out.append(s if s not in out else f"{s}_{i + 1}")
    return out


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write ``header`` and ``rows`` (cells through ``cell``); returns the path."""
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(header))
        for row in rows:
            w.writerow([cell(v) for v in row])
    return path


def confusion_rows(matrix: np.ndarray, labels: Sequence[str]) -> tuple[list[str], list[list[Any]]]:
    """Header and rows of a square matrix with truth in rows and prediction in columns."""
    header = ["truth \\ prediction", *labels]
    return header, [[labels[i], *(int(v) for v in row)] for i, row in enumerate(np.asarray(matrix))]
