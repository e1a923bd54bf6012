"""Argument checks of the model builders and layers, in Keras' message style.

The test is :func:`tfsal.util.checks.check_int`'s (an int, not a bool, at least 1); only the
message differs: Keras layers, and tfsal's (whose messages tests and users match on), put the
argument's name in backticks and print the value as it is:
``"`filters` must be a positive int. Received: filters=0"``.
"""

from __future__ import annotations

from tfsal.util.checks import check_int

__all__ = ["positive_int"]


def positive_int(value, name: str) -> int:
    """``value`` if it is a positive int (not a bool).

    Raises:
        ValueError: ``"`{name}` must be a positive int. Received: {name}={value}"``.
    """
    try:
        return check_int(name, value)
    except ValueError:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value}") from None
