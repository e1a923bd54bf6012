"""Patient-wise splits: every image of one patient lands in the same split."""

from __future__ import annotations

from collections.abc import Hashable, Iterable

import numpy as np

__all__ = ["assign_splits"]


def assign_splits(patients: Iterable[Hashable], val: float = 0.1, test: float = 0.2, seed: int = 0) -> dict:
    """``{patient: "train" | "val" | "test"}`` with seeded shares of the distinct patients in val and
    test (rounded; at least one each when the share is positive and there are patients to spare).

    Raises:
        ValueError: shares outside [0, 1) or summing to 1 or more.
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise ValueError(f"need 0 <= val, test and val + test < 1. Received: val={val}, test={test}")
    unique = sorted(set(patients), key=str)
    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    spare = max(len(unique) - 1, 0)  # train keeps at least one patient
    n_test = min(max(round(test * len(unique)), int(test > 0)), spare)
    n_val = min(max(round(val * len(unique)), int(val > 0)), spare - n_test)
    return {p: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, p in enumerate(order)}
