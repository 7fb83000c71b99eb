"""Pure schedule functions (no state, no tensors).

Example:
    >>> cubic_sparsity(60, 0.0, 0.8, 60, 420)
    0.0
    >>> cubic_sparsity(420, 0.0, 0.8, 60, 420)
    0.8
"""

from __future__ import annotations


def cubic_sparsity(step: int, initial: float, final: float, begin: int, end: int) -> float:
    """Zhu & Gupta's cubic ramp: ``s_f + (s_i - s_f) * (1 - progress)^3``, clamped to [begin, end].

    Example:
        >>> round(cubic_sparsity(240, 0.0, 0.8, 60, 420), 3)
        0.7
    """
    if step <= begin:
        return initial if end > begin else final
    if step >= end:
        return final
    progress = (step - begin) / (end - begin)
    return final + (initial - final) * (1.0 - progress) ** 3


def linear_ramp(step: int, begin: int, end: int, start_value: float, end_value: float) -> float:
    """Linear interpolation from ``start_value`` at ``begin`` to ``end_value`` at ``end``.

    Example:
        >>> linear_ramp(5, 0, 10, 0.0, 1.0)
        0.5
    """
    if step <= begin:
        return start_value if end > begin else end_value
    if step >= end:
        return end_value
    return start_value + (end_value - start_value) * (step - begin) / (end - begin)
