"""Datasets for a function of one's own: the mapping that :func:`kan.train.fit` trains on."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor


def create_dataset(
    f: Callable[[Tensor], Tensor],
    ranges: Sequence[tuple[float, float]],
    n_train: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Tensor]:
    """Train and test points of ``f``: inputs uniform on ``ranges`` (one ``(low, high)`` per input,
    drawn from a generator seeded with ``seed``, train first), labels ``f(inputs)``.

    ``f`` maps inputs ``[n, len(ranges)]`` to ``[n]`` or ``[n, n_out]``. Returns ``train_input``,
    ``train_label``, ``test_input``, ``test_label`` with labels ``[n, n_out]``.
    """
    if not ranges or any(len(r) != 2 or not r[0] < r[1] for r in ranges):
        raise ValueError(f"ranges must list one (low, high) with low < high per input, got {list(ranges)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need n_train >= 1 and n_test >= 1, got {n_train} and {n_test}")
    generator = torch.Generator().manual_seed(seed)
    low = torch.tensor([r[0] for r in ranges], dtype=dtype)
    span = torch.tensor([r[1] - r[0] for r in ranges], dtype=dtype)
    data = {}
    for split, n in (("train", n_train), ("test", n_test)):
        inputs = low + span * torch.rand(n, len(ranges), generator=generator, dtype=dtype)
        labels = torch.as_tensor(f(inputs), dtype=dtype)
        labels = labels[:, None] if labels.dim() == 1 else labels
        if labels.dim() != 2 or labels.shape[0] != n:
            raise ValueError(f"f must return [n] or [n, n_out] for inputs [n, {len(ranges)}], got {list(labels.shape)}")
        data[f"{split}_input"], data[f"{split}_label"] = inputs, labels
    return data
