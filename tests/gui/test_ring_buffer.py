"""Ring buffers behind the live plots: order, capacity, O(1) amortised appends, EMA."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gui.training.ring_buffer import RingBuffer, Series, ema


def test_keeps_the_newest_rows_in_order():
    rb = RingBuffer(capacity=5, width=2, initial=2)
    for i in range(12):
        rb.append((i, 10 * i))
    v = rb.view()
    assert v.shape == (5, 2)
    np.testing.assert_array_equal(v[:, 0], [7, 8, 9, 10, 11])
    np.testing.assert_array_equal(v[:, 1], [70, 80, 90, 100, 110])
    assert rb.total == 12
    assert len(rb) == 5


def test_view_is_read_only_and_column_is_a_copy():
    rb = RingBuffer(capacity=4, width=1)
    rb.extend(np.arange(3.0))
    with pytest.raises(ValueError):
        rb.view()[0, 0] = 1.0
    col = rb.column(0)
    col[0] = 99.0
    assert rb.view()[0, 0] == 0.0


def test_storage_never_exceeds_twice_the_capacity():
    rb = RingBuffer(capacity=100, width=1, initial=4)
    for i in range(10_000):
        rb.append(i)
        assert rb._buf.shape[0] <= 200
    np.testing.assert_array_equal(rb.view()[:, 0], np.arange(9_900, 10_000))


def test_append_cost_is_amortised_constant():
    """Rows copied while compacting stay proportional to the rows appended (no O(n) per append)."""
    rb = RingBuffer(capacity=1000, width=1, initial=2)
    copied = 0
    orig = rb._make_room

    def counting() -> None:
        nonlocal copied
        copied += len(rb)
        orig()

    rb._make_room = counting
    for i in range(50_000):
        rb.append(i)
    assert copied < 3 * 50_000


def test_last_and_clear():
    rb = RingBuffer(capacity=3, width=2)
    with pytest.raises(IndexError):
        rb.last()
    rb.append((1, 2))
    np.testing.assert_array_equal(rb.last(), [1, 2])
    rb.clear()
    assert len(rb) == 0 and rb.view().shape == (0, 2)


def test_bad_capacity_is_refused():
    with pytest.raises(ValueError, match="capacity"):
        RingBuffer(capacity=1)


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(2, 40), n=st.integers(0, 200), initial=st.integers(1, 64))
def test_matches_a_python_list_tail(cap, n, initial):
    rb = RingBuffer(capacity=cap, width=1, initial=initial)
    for i in range(n):
        rb.append(float(i))
    np.testing.assert_array_equal(rb.view()[:, 0], np.arange(n, dtype=float)[-cap:] if n else [])


def test_series_ema_incremental_equals_batch():
    rng = np.random.default_rng(0)
    vals = rng.normal(1.0, 0.3, 300)
    vals[[5, 40]] = np.nan
    s = Series(capacity=1000, smoothing=0.8)
    for i, v in enumerate(vals):
        s.append(i, 0, v)
    np.testing.assert_allclose(s.values(smoothed=True), ema(vals, 0.8), equal_nan=True)
    np.testing.assert_array_equal(s.values(), vals)
    assert np.isnan(s.values(smoothed=True)[5])


def test_series_smoothing_change_recomputes_and_bumps_version():
    s = Series(capacity=100, smoothing=0.0)
    for i, v in enumerate([1.0, 3.0, 5.0]):
        s.append(i, 0, v)
    np.testing.assert_array_equal(s.values(smoothed=True), [1.0, 3.0, 5.0])
    v0 = s.version
    s.set_smoothing(0.5)
    assert s.version == v0 + 1
    np.testing.assert_allclose(s.values(smoothed=True), [1.0, 2.0, 3.5])
    s.append(3, 0, 7.5)  # continues from the recomputed state
    assert s.values(smoothed=True)[-1] == pytest.approx(0.5 * 3.5 + 0.5 * 7.5)


def test_series_rows_hold_step_epoch_value():
    s = Series(capacity=2)
    for i in range(3):
        s.append(10 + i, i, 0.5 * i)
    np.testing.assert_array_equal(s.rows(), [[11, 1, 0.5], [12, 2, 1.0]])
    np.testing.assert_array_equal(s.steps(), [11, 12])
