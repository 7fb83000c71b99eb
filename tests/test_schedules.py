"""Pure schedule functions: the cubic sparsity ramp and the linear ramp."""

from __future__ import annotations

import pytest

from hf_prune.schedules import cubic_sparsity, linear_ramp


def test_cubic_schedule_endpoints_and_monotone():
    values = [cubic_sparsity(t, 0.0, 0.8, 10, 110) for t in range(0, 130)]
    assert values[0] == 0.0 and values[10] == 0.0 and values[110] == pytest.approx(0.8) and values[-1] == 0.8
    assert all(b >= a for a, b in zip(values, values[1:]))
    # cubic: prunes fastest at the start of the ramp
    assert values[35] - values[10] > values[110] - values[85]


def test_cubic_schedule_with_empty_ramp_jumps_to_final():
    assert cubic_sparsity(5, 0.0, 0.5, 5, 5) == 0.5


def test_linear_ramp():
    assert linear_ramp(0, 0, 10, 0.0, 0.3) == 0.0
    assert linear_ramp(10, 0, 10, 0.0, 0.3) == pytest.approx(0.3)
    assert linear_ramp(5, 0, 10, 0.0, 0.3) == pytest.approx(0.15)
