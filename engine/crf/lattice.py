"""Permutohedral lattice (Adams, Baek & Davis 2010) in torch, vectorised, on any device.

A line-by-line port of the lattice in Krähenbühl's densecrf 2.x (the code inside ``pydensecrf``):
same elevation and scale factor, same rounding to the nearest remainder-0 point, same barycentric
weights, the same [1/2, 1, 1/2] blur along each of the d + 1 lattice axes and the same slice scaling
``1 / (1 + 2^-d)``. Like that code it does NOT exclude a point's own contribution (the self-term
k(i, i) stays in the filtered value). The hash table is replaced by sorting integer-encoded keys
(``torch.sort``) and ``searchsorted`` lookups; splat, blur and slice are sparse CSR matrices, so
one filter is d + 3 sparse-dense products, on CPU and CUDA alike.
"""

from __future__ import annotations

import copy
import math
import struct
import warnings

import torch
from torch import Tensor


class Permutohedral:
    """Approximate Gaussian filter ``out_i = sum_j exp(-|f_i - f_j|^2 / 2) in_j`` over d-dim features.

    features: (N, d) float32 (already divided by the kernel widths). ``compute`` filters (N, C) values.
    """

    def __init__(self, features: Tensor) -> None:
        if features.ndim != 2 or features.shape[1] < 1:
            raise ValueError(f"features must be (N, d) with d >= 1, got {tuple(features.shape)}")
        f = features.to(torch.float32)
        n, d = f.shape
        dev = f.device
        self.d = d
        self.n = n
        self.alpha = 1.0 / (1.0 + 2.0 ** (-d))  # densecrf's slice scaling
        # elevate onto the hyperplane sum(x) = 0 of R^(d+1): y = E f  (p.5 of Adams et al.)
        inv_std_dev = _f32(math.sqrt(2.0 / 3.0) * (d + 1))  # a C float, as in densecrf
        scale = [_f32(1.0 / math.sqrt((i + 2) * (i + 1)) * inv_std_dev) for i in range(d)]
        elevated = torch.empty((n, d + 1), dtype=torch.float32, device=dev)
        sm = torch.zeros(n, dtype=torch.float32, device=dev)
        for j in range(d, 0, -1):
            cf = f[:, j - 1] * scale[j - 1]
            elevated[:, j] = sm - j * cf
            sm = sm + cf
        elevated[:, 0] = sm
        # closest remainder-0 lattice point (round half to even, as SSE rounding does)
        inv_dp1 = torch.tensor(1.0 / (d + 1), dtype=torch.float32, device=dev)
        v = torch.round(elevated * inv_dp1)
        rem0 = v * (d + 1)
        total = v.sum(1, keepdim=True)
        # rank of each coordinate's residual = its place in a stable descending sort: densecrf's pairwise
        # count (for i < j: diff_i < diff_j ? rank_i++ : rank_j++) puts the lower index first on ties
        diff = elevated - rem0
        idx = torch.arange(d + 1, device=dev)
        order = torch.sort(diff, dim=1, descending=True, stable=True).indices
        rank = torch.empty_like(order).scatter_(1, order, idx.expand_as(order))
        rank = rank.to(torch.float32) + total
        add = torch.where(rank < 0, d + 1.0, 0.0) - torch.where(rank >= d + 1, d + 1.0, 0.0)
        rank = (rank + add).long()
        rem0 = rem0 + add
        # barycentric coordinates (p.10)
        vb = (elevated - rem0) * inv_dp1
        bary = torch.zeros((n, d + 2), dtype=torch.float32, device=dev)
        bary.scatter_add_(1, d - rank, vb)
        bary.scatter_add_(1, d - rank + 1, -vb)
        bary[:, 0] += 1.0 + bary[:, d + 1]
        # the d+1 enclosing simplex vertices: key_r[i] = rem0[i] + canonical[r, rank[i]], i < d, with
        # canonical[r, k] = r - (d + 1) * [k > d - r]; keys are encoded as one int64 code per vertex,
        # lexicographic in the key (so the vertex order, hence every sum, is that of the keys themselves)
        base = rem0[:, :d].long()
        lo = base.amin(0) - 2 * (d + 1)  # keys lie within rem0 +- d; one more lattice step of margin
        span = base.amax(0) + 2 * (d + 1) - lo + 1
        strides = torch.ones(d, dtype=torch.long, device=dev)
        for i in range(d - 2, -1, -1):
            strides[i] = strides[i + 1] * span[i + 1]
        if float(span.double().log2().sum()) > 62:
            raise ValueError("lattice too large to index with 64-bit keys: increase the kernel widths")
        base_code = ((base - lo) * strides).sum(1)  # (N,)
        rank_d = rank[:, :d]
        codes = torch.stack([base_code + r * strides.sum() - (d + 1) * (strides * (rank_d > d - r)).sum(1)
                             for r in range(d + 1)], 1)  # (N, d+1)
        sorted_codes, by_vertex = torch.sort(codes.flatten(), stable=True)  # one sort: vertices and splat order
        uniq, counts = torch.unique_consecutive(sorted_codes, return_counts=True)
        inverse = torch.empty_like(by_vertex)
        inverse[by_vertex] = torch.repeat_interleave(torch.arange(uniq.numel(), device=dev), counts)
        m = uniq.numel()
        self.m = m
        offsets = inverse.view(n, d + 1)  # lattice vertex of each (point, remainder)
        weights = bary[:, : d + 1]
        # splat (M, N) and slice (N, M) as sparse CSR matrices: one spmm each instead of a scatter
        order = torch.argsort(offsets, dim=1)
        cols = offsets.gather(1, order)
        w_sorted = weights.gather(1, order)
        self.slice = _csr(torch.arange(0, n * (d + 1) + 1, d + 1, device=dev), cols.flatten(),
                          (w_sorted * self.alpha).flatten(), (n, m))
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        point = torch.arange(n, device=dev).repeat_interleave(d + 1)
        self.splat = _csr(crow, point[by_vertex], weights.flatten()[by_vertex], (m, n))
        # blur along lattice axis j: v_i + (v_n1 + v_n2) / 2 with n1 = key - 1 (key[j] + d), n2 = key + 1
        self.blur = []
        rows = torch.arange(m, device=dev)
        for j in range(d + 1):
            delta = -strides.sum()
            if j < d:
                delta = delta + (d + 1) * strides[j]
            self.blur.append(_blur_matrix(rows, uniq, [uniq + delta, uniq - delta]))

    def compute(self, values: Tensor) -> Tensor:
        """Splat, blur and slice ``values`` (N, C) float32 -> (N, C) float32 filtered values."""
        return self.slice @ self.blurred(values)

    def compute_add(self, base: Tensor, values: Tensor) -> Tensor:
        """``base + compute(values)`` in one pass over the (N, C) output (sparse ``addmm``)."""
        return torch.addmm(base, self.slice, self.blurred(values))

    def blurred(self, values: Tensor) -> Tensor:
        """Splat and blur ``values`` (N, C) -> (M, C) lattice values (``slice @`` them to filter)."""
        grid = self.splat @ values
        for b in self.blur:
            grid = b @ grid
        return grid

    def scaled(self, pre: Tensor, post: Tensor) -> Permutohedral:
        """A copy whose ``compute(v)`` is ``post * K(pre * v)``; pre, post (N,) float32 per-point factors.

        The factors are folded into the splat and slice matrices (no extra passes over (N, C) values).
        """
        out = copy.copy(self)
        out.splat = _scale_csr(self.splat, col_scale=pre)
        out.slice = _scale_csr(self.slice, row_scale=post)
        return out


def _scale_csr(mat: Tensor, row_scale: Tensor | None = None, col_scale: Tensor | None = None) -> Tensor:
    """CSR ``diag(row_scale) @ mat @ diag(col_scale)``."""
    crow, col, val = mat.crow_indices(), mat.col_indices(), mat.values()
    if row_scale is not None:
        rows = torch.repeat_interleave(torch.arange(mat.shape[0], device=val.device), crow.diff())
        val = val * row_scale[rows]
    if col_scale is not None:
        val = val * col_scale[col]
    return _csr(crow, col, val, (mat.shape[0], mat.shape[1]))


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (mirrors assignments to C floats)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _csr(crow: Tensor, col: Tensor, val: Tensor, size: tuple[int, int]) -> Tensor:
    """A float32 CSR matrix from int64 row pointers, column indices (sorted within rows) and values."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, val.to(torch.float32), size, check_invariants=False)


def _blur_matrix(rows: Tensor, codes: Tensor, neighbour_codes: list[Tensor]) -> Tensor:
    """(M, M) CSR: 1 on the diagonal, 1/2 at each neighbour present in ``codes`` (sorted, unique)."""
    m = codes.numel()
    cols, keep = [rows], [torch.ones(m, dtype=torch.bool, device=codes.device)]
    for q in neighbour_codes:
        pos = torch.searchsorted(codes, q).clamp(max=m - 1)
        cols.append(pos)
        keep.append(codes[pos] == q)
    col, mask = torch.stack(cols, 1), torch.stack(keep, 1)  # (M, 3)
    col = torch.where(mask, col, col.new_full((), m))  # absent -> sentinel m, sorted last
    col, order = torch.sort(col, dim=1)
    val = torch.where(col == rows[:, None], 1.0, 0.5)
    mask = mask.gather(1, order)
    crow = torch.cat([rows.new_zeros(1), mask.sum(1).cumsum(0)])
    return _csr(crow, col[mask], val[mask], (m, m))
