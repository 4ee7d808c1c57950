"""Stride and theoretical receptive field of every tensor of a forward pass, computed analytically.

``GridTracer`` is a ``TorchFunctionMode``: while it is active, every torch call of the traced forward
(module or functional: ``conv2d``, ``max_pool2d``, ``interpolate``, ``add``, ``cat``, ...) passes through
it, and each output tensor gets the ``Grid`` of its cells, derived from the grids of its inputs. The
traced input starts as ``Grid.input()``: one cell per pixel. Per axis (y, x), with ``jump`` the distance
between neighbouring cells (the stride), ``start`` the centre of cell 0, ``rf`` the receptive-field size
and ``offset`` the field's centre minus the cell's centre, all in pixels of the traced input (pixel c
covers [c, c + 1), so input pixel 0's centre is 0.5). Cell i sits at ``start + i * jump``:

- convolution / pooling (kernel k, stride s, padding p, dilation d):
  ``rf += (k - 1) * d * jump``; ``start += ((k - 1) * d / 2 - p) * jump``; ``jump *= s``;
- adaptive pooling n -> m cells: a window of up to ``ceil(n / m)`` cells, ``jump *= n / m``;
- interpolation n -> m cells: ``jump *= n / m``, cell centres on the line ``align_corners`` defines; a
  nearest resize picks one input cell within ``|1 - n / m| / 2`` cells of that line and other modes mix
  ``max(1, n / m)`` cells more, so ``rf`` grows by that many input cells: it covers every cell's field;
- ops that combine tensors on the same grid (``add``, ``cat``, ``mul``, norms, activations...): the
  smallest box holding every input's field, on the cell centres of the first input that went through no
  resize (an FPN level keeps its lateral's cell centres; the top-down path widens and shifts the field:
  ``offset``). Operands on another grid are broadcasts (e.g. a squeeze-excitation gate (C, 1, 1)) and are
  left out, as is a global-pooling branch broadcast back with ``interpolate`` (DeepLab's ASPP pooling):
  the receptive field is the convolutional one;
- slicing keeps the grid (top-left crops); anything that loses the spatial layout (flatten, linear
  layers) ends the trace: those tensors have no grid.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

Pair = tuple[float, float]  # (y, x)


@dataclass(frozen=True)
class Grid:
    """Cell geometry of a (..., h, w) tensor in traced-input pixels, per axis (y, x) (module docstring).
    ``exact``: no resize on the way (its cell centres are exact, not a line fitted through a resize)."""

    jump: Pair
    rf: Pair
    start: Pair
    offset: Pair = (0.0, 0.0)
    exact: bool = True

    @staticmethod
    def input() -> Grid:
        return Grid((1.0, 1.0), (1.0, 1.0), (0.5, 0.5))


def _pair(v: Any, default: int = 0) -> tuple[int, int]:
    if v is None:
        return default, default
    if isinstance(v, int | float):
        return int(v), int(v)
    v = tuple(v)
    return (int(v[0]), int(v[0])) if len(v) == 1 else (int(v[-2]), int(v[-1]))


def window(g: Grid, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[float, float],
           dilation: tuple[int, int]) -> Grid:
    """The grid after a convolution or pooling window (the formulas of the module docstring)."""
    jump, rf, start = [], [], []
    for a in range(2):
        span = (kernel[a] - 1) * dilation[a]
        rf.append(g.rf[a] + span * g.jump[a])
        start.append(g.start[a] + (span / 2 - padding[a]) * g.jump[a])
        jump.append(g.jump[a] * stride[a])
    return Grid((jump[0], jump[1]), (rf[0], rf[1]), (start[0], start[1]), g.offset, g.exact)


def adaptive(g: Grid, n: tuple[int, int], m: tuple[int, int]) -> Grid:
    """Adaptive pooling from n to m cells per axis: cell i pools input cells floor(i n/m) .. ceil((i+1) n/m) - 1."""
    jump, rf, start = [], [], []
    for a in range(2):
        if n[a] == m[a]:
            jump.append(g.jump[a]), rf.append(g.rf[a]), start.append(g.start[a])
            continue
        widest = max(math.ceil((i + 1) * n[a] / m[a]) - (i * n[a]) // m[a] for i in range(m[a]))
        first = math.ceil(n[a] / m[a])
        rf.append(g.rf[a] + (widest - 1) * g.jump[a])
        start.append(g.start[a] + (first - 1) / 2 * g.jump[a])
        jump.append(g.jump[a] * n[a] / m[a])
    return Grid((jump[0], jump[1]), (rf[0], rf[1]), (start[0], start[1]), g.offset, g.exact and n == m)


def resample(g: Grid, n: tuple[int, int], m: tuple[int, int], nearest: bool, align_corners: bool) -> Grid:
    """``interpolate`` from n to m cells per axis (see the module docstring)."""
    jump, rf, start = [], [], []
    for a in range(2):
        ratio = n[a] / m[a]
        if align_corners and m[a] > 1:
            j, s = g.jump[a] * (n[a] - 1) / (m[a] - 1), g.start[a]
        else:
            j, s = g.jump[a] * ratio, g.start[a] + (0.5 * ratio - 0.5) * g.jump[a]
        jump.append(j), start.append(s)
        rf.append(g.rf[a] + g.jump[a] * (abs(1.0 - ratio) if nearest else max(1.0, ratio)))
    return Grid((jump[0], jump[1]), (rf[0], rf[1]), (start[0], start[1]), g.offset, g.exact and n == m)


def union(grids: list[Grid]) -> Grid:
    """Fields of several paths meeting on one grid: the smallest box holding all of them, on the cell
    centres of the first exact grid (module docstring)."""
    base = next((g for g in grids if g.exact), grids[0])
    rf, offset = [], []
    for a in range(2):
        lo = hi = 0.0
        for g in grids:
            d = g.start[a] + g.offset[a] - base.start[a]  # this path's field centre - the cell centre
            lo, hi = max(lo, g.rf[a] / 2 - d), max(hi, g.rf[a] / 2 + d)
        rf.append(lo + hi)
        offset.append((hi - lo) / 2)
    return Grid(base.jump, (rf[0], rf[1]), base.start, (offset[0], offset[1]), base.exact)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    """Tensors in ``obj`` (a tensor, or lists/tuples/dicts of them, one level of nesting deep is enough
    for torch calls; deeper for module outputs)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _tensors(v)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)


def spatial(t: torch.Tensor) -> tuple[int, int] | None:
    """(h, w) of a (N, C, h, w) tensor, else None (traced tensors are 4-D)."""
    return (int(t.shape[-2]), int(t.shape[-1])) if t.ndim == 4 else None


def _arg(args: tuple, kwargs: dict, index: int, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


# function name -> positions of (kernel, stride, padding, dilation) in its signature; -1: not an argument
_WINDOWS: dict[str, tuple[int, int, int, int]] = {
    "conv2d": (-1, 3, 4, 5),  # (input, weight, bias, stride, padding, dilation, groups); kernel from weight
    "max_pool2d": (1, 2, 3, 4),
    "_max_pool2d": (1, 2, 3, 4),
    "max_pool2d_with_indices": (1, 2, 3, 4),
    "avg_pool2d": (1, 2, 3, -1),
}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_max_pool2d",
             "adaptive_max_pool2d_with_indices"}


class GridTracer(TorchFunctionMode):
    """Tracks a ``Grid`` per tensor through torch calls (see the module docstring).

    ``mark(t)`` declares ``t`` a traced input; ``grid(t)`` reads a tensor's grid (None: untraced, or its
    spatial layout was lost). Tensors are held by weak reference: tracing keeps no activation alive.
    """

    def __init__(self) -> None:
        super().__init__()
        self._grids: dict[int, tuple[weakref.ref, Grid]] = {}

    def _set(self, t: torch.Tensor, grid: Grid) -> None:
        key = id(t)

        def forget(ref: weakref.ref, key: int = key) -> None:
            hit = self._grids.get(key)
            if hit is not None and hit[0] is ref:
                del self._grids[key]

        self._grids[key] = (weakref.ref(t, forget), grid)

    def mark(self, t: torch.Tensor, grid: Grid | None = None) -> None:
        if spatial(t) is not None:
            self._set(t, grid or Grid.input())

    def grid(self, t: torch.Tensor) -> Grid | None:
        hit = self._grids.get(id(t))
        return hit[1] if hit is not None and hit[0]() is t else None

    def alias(self, new: torch.Tensor, old: torch.Tensor) -> None:
        """``new`` sits on ``old``'s grid (e.g. a clone made outside the mode)."""
        g = self.grid(old)
        if g is not None:
            self._set(new, g)

    def __torch_function__(self, func: Callable, types: tuple, args: tuple = (), kwargs: dict | None = None
                           ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if isinstance(out, torch.Tensor | list | tuple) and self._grids:
            # an argument layout we do not know: the outputs simply get no grid
            with contextlib.suppress(TypeError, ValueError, IndexError, ZeroDivisionError):
                self._propagate(getattr(func, "__name__", ""), args, kwargs, out)
        return out

    def _propagate(self, name: str, args: tuple, kwargs: dict, out: Any) -> None:
        outs = [t for t in _tensors(out) if spatial(t) is not None]
        if not outs:
            return
        x = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("input")
        g_in = self.grid(x) if isinstance(x, torch.Tensor) else None
        new: Grid | None = None
        if name in _WINDOWS and g_in is not None:
            ki, si, pi, di = _WINDOWS[name]
            weight = _arg(args, kwargs, 1, "weight")
            kernel = _pair(weight.shape[-2:]) if ki < 0 else _pair(_arg(args, kwargs, ki, "kernel_size"))
            raw = _arg(args, kwargs, si, "stride")
            if raw is None or (isinstance(raw, list | tuple) and len(raw) == 0):
                stride = (1, 1) if name == "conv2d" else kernel  # pooling: stride defaults to the kernel
            else:
                stride = _pair(raw)
            dilation = _pair(_arg(args, kwargs, di, "dilation"), 1) if di >= 0 else (1, 1)
            padding = _arg(args, kwargs, pi, "padding", 0)
            if isinstance(padding, str):  # conv2d 'valid' / 'same' (torch pads 'same' at the end first)
                pad = (0, 0) if padding == "valid" else _pair([((k - 1) * d) // 2 for k, d in zip(kernel, dilation)])
            else:
                pad = _pair(padding)
            new = window(g_in, kernel, stride, pad, dilation)
        elif name in _ADAPTIVE and g_in is not None:
            new = adaptive(g_in, spatial(x), spatial(outs[0]))
        elif name == "interpolate" and g_in is not None:
            if spatial(x) != (1, 1):  # a global-pooling branch broadcast back is left out
                mode = _arg(args, kwargs, 3, "mode", "nearest")
                new = resample(g_in, spatial(x), spatial(outs[0]), mode.startswith("nearest"),
                               bool(_arg(args, kwargs, 4, "align_corners", False)))
        elif name == "pad" and g_in is not None:
            p = list(_arg(args, kwargs, 1, "pad")) + [0, 0, 0, 0]
            start = (g_in.start[0] - p[2] * g_in.jump[0], g_in.start[1] - p[0] * g_in.jump[1])
            new = Grid(g_in.jump, g_in.rf, start, g_in.offset, g_in.exact)
        elif name in ("__getitem__", "narrow", "split", "chunk", "unbind") and g_in is not None:
            new = g_in  # crops keep the grid
        elif name not in _WINDOWS and name not in _ADAPTIVE and name != "interpolate":
            hw = spatial(outs[0])
            same = [g for t in _tensors((args, kwargs)) if spatial(t) == hw and (g := self.grid(t)) is not None]
            new = union(same) if same else None
        if new is None:
            return
        for t in outs:
            self._set(t, new)
