"""One forward pass under hooks: every trunk layer's output shape, stride and receptive field, plus outputs.

``Probe(model, trunk, capture, extras)`` is a context manager around ONE call of the model:

- the trunk (the named submodule whose layers the user picks, e.g. a detector's ``backbone``; "" = the
  whole model) runs under a ``GridTracer``: its input tensor is the traced input, so strides and
  receptive fields are in pixels of the trunk's input (the model's resized, normalised image);
- a forward hook on every module of the trunk records its ``LayerInfo`` (a module run several times,
  like torchvision ResNet's shared ReLU, reports its last call);
- outputs of non-leaf trunk modules and of ``extras`` (modules outside the trunk, e.g. ``roi_heads``)
  are kept by reference (extras in copied lists/dicts: torchvision's ``postprocess`` rewrites the RoI
  heads' result dicts in place, into original pixels); for ``capture`` layers the model goes on with a
  clone of the output, so a later in-place op (``ReLU(inplace=True)`` after a BatchNorm) cannot change
  the kept one. A clone is an identity op for autograd: gradients reach the kept output through it.

The temporary ``forward`` wrapper and every hook are removed on exit, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.internals.trace import Grid, GridTracer, _tensors, spatial


class InternalsError(ValueError):
    """Bad input to the internals (unknown layer, target out of range...); one line for the user."""


@dataclass(frozen=True)
class LayerInfo:
    """One module of the trunk after a probed forward.

    ``out_shape``: its (first) output tensor's shape without the batch dimension, e.g. (C, h, w); None
    when the module did not run. ``stride``, ``receptive_field``, ``center0``, ``rf_offset``: (y, x) in
    pixels of the model input; cell (i, j) sits at ``center0 + (i, j) * stride`` and its field is a box
    of size ``receptive_field`` centred ``rf_offset`` away from it (0 unless paths of different depth
    meet through a resize, as in an FPN). None when the output has no spatial grid.
    """

    name: str
    type: str
    out_shape: tuple[int, ...] | None
    stride: tuple[float, float] | None
    receptive_field: tuple[float, float] | None
    center0: tuple[float, float] | None
    rf_offset: tuple[float, float] | None
    leaf: bool
    calls: int = 0
    order: int = -1  # position of its last call among the trunk's module calls (-1: not run)


def _map_tensors(obj: Any, fn: Any) -> Any:
    """``obj`` with every tensor replaced by ``fn(tensor)`` (lists, tuples and dicts rebuilt)."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, list | tuple) and not hasattr(obj, "_fields"):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
    return obj


def submodule(model: nn.Module, name: str) -> nn.Module:
    """``model``'s module ``name`` ("" = the model); KeyError naming the module when absent."""
    return model.get_submodule(name) if name else model


class Probe:
    """See the module docstring. After the call: ``layers()``, ``output(name)``, ``tensors(name)``."""

    def __init__(self, model: nn.Module, trunk: str = "", capture: Iterable[str] = (), extras: Iterable[str] = ()
                 ) -> None:
        self.model, self.trunk_name = model, trunk
        self.trunk = submodule(model, trunk)
        self.capture = set(capture)
        self.extras = tuple(extras)
        self.tracer = GridTracer()
        self.input_hw: tuple[int, int] | None = None  # (h, w) of the trunk's input tensor (padded)
        self._modules = dict(self.trunk.named_modules(prefix=trunk))
        unknown = sorted(self.capture - set(self._modules))
        if unknown:
            raise KeyError(f"unknown layer {unknown[0]!r}")
        self._seen: dict[str, dict] = {}
        self._outputs: dict[str, Any] = {}
        self._grids: dict[str, list[tuple[torch.Tensor, Grid | None]]] = {}
        self._handles: list[Any] = []
        self._saved_forward: Any = None  # the trunk's own instance-level ``forward``, if it had one
        self._wrapped = False
        self._calls = 0

    # -- installation ------------------------------------------------------------------------------------
    def __enter__(self) -> Probe:
        try:
            self._install()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _install(self) -> None:
        for name, m in self._modules.items():
            self._handles.append(m.register_forward_hook(self._hook(name, leaf=not any(True for _ in m.children()))))
        for name in self.extras:
            self._handles.append(submodule(self.model, name).register_forward_hook(self._extra_hook(name)))
        self._saved_forward = self.trunk.__dict__.get("forward")
        self._wrapped = True
        original = self.trunk.forward
        tracer = self.tracer

        def traced(*args: Any, **kwargs: Any) -> Any:
            first = next((t for t in _tensors(args) if spatial(t) is not None), None)
            with tracer:
                if first is not None:
                    tracer.mark(first)
                    self.input_hw = spatial(first)
                return original(*args, **kwargs)

        self.trunk.forward = traced

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self._wrapped:
            if self._saved_forward is not None:
                self.trunk.forward = self._saved_forward
            else:
                self.trunk.__dict__.pop("forward", None)
        self._saved_forward, self._wrapped = None, False

    def _hook(self, name: str, leaf: bool) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> Any:
            passed = None
            if name in self.capture:  # the model goes on with a clone; ``out`` stays as the layer left it
                passed = _map_tensors(out, torch.Tensor.clone)
                for new, old in zip(_tensors(passed), _tensors(out)):
                    self.tracer.alias(new, old)
            tensors = [t for t in _tensors(out) if spatial(t) is not None]
            first = next(_tensors(out), None)
            grid = self.tracer.grid(tensors[0]) if tensors else None
            self._calls += 1
            seen = self._seen.setdefault(name, {"calls": 0})
            seen.update(calls=seen["calls"] + 1, order=self._calls, grid=grid, leaf=leaf,
                        shape=tuple(int(v) for v in first.shape[1:]) if first is not None else None,
                        ids=tuple(id(t) for t in tensors) or (id(first),))
            if not leaf or name in self.capture:
                self._outputs[name] = out
                self._grids[name] = [(t, self.tracer.grid(t)) for t in tensors]
            return passed

        return hook

    def _extra_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: Any) -> None:
            # a copy of the containers: torchvision's postprocess rewrites the RoI heads' result dicts in place
            self._outputs[name] = _map_tensors(out, lambda t: t)

        return hook

    # -- results -----------------------------------------------------------------------------------------
    def layers(self) -> list[LayerInfo]:
        """Every module of the trunk in tree order (parents first), the trunk root left out when it is the
        whole model."""
        out = []
        for name, m in self._modules.items():
            if name == "" and self.trunk_name == "":
                continue
            s = self._seen.get(name)
            leaf = not any(True for _ in m.children())
            if s is None:
                out.append(LayerInfo(name, type(m).__name__, None, None, None, None, None, leaf))
                continue
            g: Grid | None = s["grid"]
            out.append(LayerInfo(name, type(m).__name__, s["shape"], g.jump if g else None, g.rf if g else None,
                                 g.start if g else None, g.offset if g else None, leaf, s["calls"], s["order"]))
        return out

    def output(self, name: str) -> Any:
        """The raw output of a non-leaf trunk module, a captured layer or an extra (None if not recorded)."""
        return self._outputs.get(name)

    def tensors(self, name: str) -> list[tuple[torch.Tensor, Grid | None]]:
        """The 4-D output tensors of a non-leaf or captured layer with their grids (FPN levels: several)."""
        return list(self._grids.get(name, []))

    def default_layer(self) -> str:
        """The layer shown when the user picks none: the last block run inside the trunk's ``backbone``
        (or the whole trunk without one) whose output has a grid; among blocks returning the same tensors,
        the deepest name (e.g. ``net.backbone.body.4``, not ``net.backbone``; a detector's ``backbone.fpn``
        with all its levels, not ``backbone``)."""
        scope = self.trunk_name
        if isinstance(getattr(self.trunk, "backbone", None), nn.Module):
            scope = f"{scope}.backbone" if scope else "backbone"
        infos = [i for i in self.layers() if i.stride is not None
                 and (not scope or i.name == scope or i.name.startswith(scope + "."))]
        pool = [i for i in infos if not i.leaf] or infos
        if not pool:
            raise InternalsError("no layer of the model has a (C, h, w) output to show")
        last = max(pool, key=lambda i: i.order)
        same = [i for i in pool if self._seen[i.name]["ids"] == self._seen[last.name]["ids"]]
        return max(same, key=lambda i: (i.name.count("."), -i.order)).name
