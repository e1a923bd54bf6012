"""Argument checks shared by the library's constructors, with Keras-style messages."""

from __future__ import annotations

import math

__all__ = ["check_int", "check_optional_int", "check_range"]


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``.

    Raises:
        ValueError: ``"{name} must be a positive int. Received: {name}=..."`` (or "an int >= m").
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {kind}. Received: {name}={value!r}")
    return value


def check_optional_int(name: str, value, minimum: int = 1) -> int | None:
    """``value`` if it is None or an int (not a bool) of at least ``minimum``.

    Raises:
        ValueError: ``"{name} must be a positive int or None. Received: ..."``.
    """
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {kind} or None. Received: {name}={value!r}")
    return value


def check_range(name: str, value) -> tuple[float, float]:
    """``value`` as ``(low, high)`` floats with ``0 < low <= high``, both finite.

    Raises:
        ValueError: ``"{name} must be (low, high) with 0 < low <= high, both finite. Received: ..."``.
    """
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not (0 < low <= high and math.isfinite(high)):
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high, both finite. Received: {name}={value!r}")
    return low, high
