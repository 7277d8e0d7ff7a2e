"""Datasets for a function of one's own: the mapping that :func:`kan.train.fit` trains on."""

from __future__ import annotations

import math
import numbers
from typing import Callable, Sequence

import torch
from torch import Tensor

from kan.layers import resolve_dtype


def create_dataset(
    f: Callable[[Tensor], Tensor],
    ranges: Sequence[tuple[float, float]],
    n_train: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    dtype: torch.dtype | str = torch.float64,
) -> dict[str, Tensor]:
    """Train and test points of ``f``: inputs uniform on ``ranges`` (one ``(low, high)`` per input,
    drawn from a generator seeded with ``seed``, train first), labels ``f(inputs)``.

    ``f`` maps inputs ``[n, len(ranges)]`` to ``[n]`` or ``[n, n_out]``. Returns ``train_input``,
    ``train_label``, ``test_input``, ``test_label`` with labels ``[n, n_out]``.
    """
    if not _is_range_list(ranges):
        raise ValueError(f"ranges must list one finite (low, high) with low < high per input, e.g. [(-1, 1), (-1, 1)], "
                         f"got {ranges!r}")
    if not all(isinstance(n, numbers.Integral) and n >= 1 for n in (n_train, n_test)):
        raise ValueError(f"n_train and n_test must be integers >= 1, got {n_train!r} and {n_test!r}")
    dtype = resolve_dtype(dtype)
    generator = torch.Generator().manual_seed(seed)
    low = torch.tensor([r[0] for r in ranges], dtype=dtype)
    span = torch.tensor([r[1] - r[0] for r in ranges], dtype=dtype)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        inputs = low + span * torch.rand(n, len(ranges), generator=generator, dtype=dtype)
        returned = torch.as_tensor(f(inputs), dtype=dtype)
        labels = returned[:, None] if returned.dim() == 1 else returned
        if labels.dim() != 2 or labels.shape[0] != n:
            raise ValueError(f"f must return [n] or [n, n_out] for inputs [n, {len(ranges)}] (n = {n}), "
                             f"got {list(returned.shape)}")
        bad = int((~torch.isfinite(labels).all(dim=1)).sum())
        if bad:
            raise ValueError(f"f gave NaN or inf on {bad} of {n} {split} inputs: choose ranges where it is finite")
        data[f"{split}_input"], data[f"{split}_label"] = inputs, labels
    return data


def _is_range_list(ranges: object) -> bool:
    """Whether ``ranges`` holds one or more ``(low, high)`` pairs of real numbers with low < high."""
    try:
        pairs = [tuple(r) for r in ranges]  # type: ignore[union-attr]
    except TypeError:
        return False
    return bool(pairs) and all(len(p) == 2 and all(isinstance(v, numbers.Real) and math.isfinite(v) for v in p)
                               and p[0] < p[1] for p in pairs)
