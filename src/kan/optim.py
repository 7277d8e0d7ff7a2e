"""Full-batch L-BFGS with a strong-Wolfe line search, lean enough for thousands of small fits.

The contract and step counting follow ``torch.optim.LBFGS(line_search_fn="strong_wolfe")``: one
:meth:`LBFGS.step` runs up to ``max_iter`` iterations and stops early after ``max_eval`` closure
evaluations. What differs is the bookkeeping, which is where torch's version spends much of a
small fit: the optimizer's vectors are one flat float64 host array (numpy costs a fraction of
small torch ops per call, and float64 iterates keep tiny late steps exact for float32 models),
parameters are written with two ops per trial point, the
inverse-Hessian product uses the compact form of Byrd, Nocedal & Schnabel (1994) (two
matrix-vector products instead of 4m vector ops) and the line search runs on Python floats.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
from scipy.linalg.lapack import dtrtri
from torch import Tensor

Evaluate = Callable[[float], tuple[float, np.ndarray, float]]  # t -> (f, grad, grad·d)
Closure = Callable[[], "Tensor | tuple[Tensor, Tensor]"]


class _CurvaturePairs:
    """The last ``m`` pairs (s, y) and the inverse-Hessian product they define.

    Pairs live in ring-buffer slots: ``rows[slot]`` is s and ``rows[m + slot]`` is y. Small
    float64 tables in chronological order (R = triu(SᵀY) and YᵀY) give, when a pair arrives, a
    ``[2m, 2m]`` mixing matrix with ``-H·g = -γ·g + rowsᵀ·(mixer·(rows·g))``.
    """

    def __init__(self, size: int, like: np.ndarray) -> None:
        self.size = size
        self.rows = np.zeros((2 * size, like.size), dtype=like.dtype)
        self.upper = np.zeros((size, size))  # R[i, j] = s_i · y_j for i <= j, chronological
        self.yy = np.zeros((size, size))  # y_i · y_j, chronological
        self.slots: list[int] = []  # slot of each pair, oldest first
        self.gamma = 1.0  # H0 = γ·I with γ = s·y / y·y of the newest pair
        self.mixer: np.ndarray | None = None  # [2m, 2m] in slot order

    def add(self, s: np.ndarray, y: np.ndarray, sy: float) -> None:
        """Store a pair with positive curvature ``sy = s · y``, dropping the oldest when full."""
        m = self.size
        if len(self.slots) == m:
            self.slots.append(self.slots.pop(0))
            self.upper[:-1, :-1] = self.upper[1:, 1:]
            self.yy[:-1, :-1] = self.yy[1:, 1:]
        else:
            self.slots.append(len(self.slots))
        k, slot = len(self.slots), self.slots[-1]
        self.rows[slot], self.rows[m + slot] = s, y
        chron = np.asarray(self.slots)
        dots = self.rows @ y  # s_i·y and y_i·y, slot order
        self.upper[:k, k - 1] = dots[chron]
        self.yy[:k, k - 1] = self.yy[k - 1, :k] = dots[m + chron]
        self.gamma = sy / dots[m + slot]
        # H = γI + [S Y]·[[R⁻ᵀ(D + γYᵀY)R⁻¹, -γR⁻ᵀ], [-γR⁻¹, 0]]·[S Y]ᵀ with D = diag(R)
        r_inv = dtrtri(self.upper[:k, :k])[0]
        inner = self.gamma * self.yy[:k, :k]
        inner.flat[:: k + 1] += self.upper.diagonal()[:k]
        mixer = np.zeros((2 * m, 2 * m))  # chronological order
        mixer[:k, :k] = -r_inv.T @ inner @ r_inv
        mixer[:k, m : m + k] = self.gamma * r_inv.T
        mixer[m : m + k, :k] = self.gamma * r_inv
        position = np.arange(m)
        position[chron] = np.arange(k)  # slot -> chronological position
        position = np.concatenate([position, m + position])
        self.mixer = mixer[np.ix_(position, position)]

    def direction(self, grad: np.ndarray) -> np.ndarray:
        """``-H·grad`` for the L-BFGS inverse-Hessian approximation H."""
        if self.mixer is None:
            return grad * -self.gamma
        return self.rows.T @ (self.mixer @ (self.rows @ grad)) - self.gamma * grad


def _cubic_minimum(t1: float, f1: float, g1: float, t2: float, f2: float, g2: float, low: float, high: float) -> float:
    """Minimiser of the cubic through two points with slopes, clipped to [low, high] (bisection
    when the cubic has no minimum or the data are degenerate)."""
    try:
        d1 = g1 + g2 - 3 * (f1 - f2) / (t1 - t2)
        d2 = math.sqrt(d1 * d1 - g1 * g2)
        if t1 <= t2:
            t = t2 - (t2 - t1) * (g2 + d2 - d1) / (g2 - g1 + 2 * d2)
        else:
            t = t1 - (t1 - t2) * (g1 + d2 - d1) / (g1 - g2 + 2 * d2)
    except (ZeroDivisionError, ValueError, OverflowError):
        return (low + high) / 2
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2


def keep_inside(t: float, left: float, right: float, insufficient_progress: bool) -> tuple[float, bool]:
    """Move a zoom trial ``t`` 10% inside ``[left, right]`` when it lies too close to an end and the
    previous trial made too little progress (Moré–Thuente safeguard); returns ``(t, insufficient)``."""
    margin = 0.1 * (right - left)
    if min(right - t, t - left) >= margin:
        return t, False
    if insufficient_progress or t >= right or t <= left:
        return (right - margin if abs(t - right) < abs(t - left) else left + margin), False
    return t, True


def strong_wolfe(
    evaluate: Evaluate, t: float, f0: float, g0: np.ndarray, slope0: float, d_max: float,
    c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25,
) -> tuple[float, np.ndarray, float, int]:
    """Step length satisfying the strong Wolfe conditions along a descent direction.

    ``slope0 = g0 · d < 0``; ``d_max = max|d|``. Brackets an acceptable step by extrapolation,
    then zooms in with safeguarded cubic interpolation (Nocedal & Wright, alg. 3.5/3.6). Returns
    ``(f, grad, t, evaluations)`` at the chosen step. A non-finite loss counts as +inf (too long).
    """

    def too_long(t_: float, f_: float, f_ref: float) -> bool:
        return f_ > f0 + c1 * t_ * slope0 or f_ >= f_ref

    def probe(t_: float) -> tuple[float, np.ndarray, float]:
        f_, g_, slope_ = evaluate(t_)
        return (f_ if math.isfinite(f_) else math.inf), g_, slope_

    f, g, slope = probe(t)
    evals, done = 1, False
    prev = (0.0, f0, g0, slope0)
    bracket: list[tuple[float, float, np.ndarray, float]] = []
    while evals <= max_ls:
        if too_long(t, f, prev[1] if evals > 2 else math.inf):
            bracket = [prev, (t, f, g, slope)]
            break
        if abs(slope) <= -c2 * slope0:
            bracket, done = [(t, f, g, slope)], True
            break
        if slope >= 0:
            bracket = [prev, (t, f, g, slope)]
            break
        low, high = t + 0.01 * (t - prev[0]), 10 * t
        prev, t = (t, f, g, slope), _cubic_minimum(prev[0], prev[1], prev[3], t, f, slope, low, high)
        f, g, slope = probe(t)
        evals += 1
    else:
        bracket = [(0.0, f0, g0, slope0), (t, f, g, slope)]

    insufficient_progress = False
    while not done and evals <= max_ls:
        lo, hi = (0, 1) if bracket[0][1] <= bracket[1][1] else (1, 0)
        (t_a, f_a, _, s_a), (t_b, f_b, _, s_b) = bracket
        if abs(t_b - t_a) * d_max < tolerance_change:
            break
        left, right = min(t_a, t_b), max(t_a, t_b)
        t = _cubic_minimum(t_a, f_a, s_a, t_b, f_b, s_b, left, right)
        t, insufficient_progress = keep_inside(t, left, right, insufficient_progress)
        f, g, slope = probe(t)
        evals += 1
        if too_long(t, f, bracket[lo][1]):
            bracket[hi] = (t, f, g, slope)
            continue
        if abs(slope) <= -c2 * slope0:
            done = True
        elif slope * (bracket[hi][0] - bracket[lo][0]) >= 0:
            bracket[hi] = bracket[lo]
        bracket[lo] = (t, f, g, slope)
    best = bracket[0] if len(bracket) == 1 or bracket[0][1] <= bracket[1][1] else bracket[1]
    return best[1], best[2], best[0], evals


class LBFGS:
    """L-BFGS for full-batch objectives; a drop-in for ``torch.optim.LBFGS`` with strong Wolfe.

    ``step(closure)`` returns the loss of the first evaluation (as torch does); the loss at the
    parameters it leaves behind is :attr:`last_loss`. Parameters must share one dtype. Not a
    ``torch.optim.Optimizer`` subclass: building one of those imports torch._dynamo, seconds of
    start-up for a short fit.
    """

    def __init__(
        self, params: Iterable[Tensor], lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
        tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 10,
        curvature_eps: float = 1e-10,
    ) -> None:
        if lr <= 0 or max_iter < 1 or history_size < 1:
            raise ValueError(f"need lr > 0, max_iter >= 1, history_size >= 1; got {lr}, {max_iter}, {history_size}")
        self.params = list(params)
        if not self.params or len({p.dtype for p in self.params}) != 1:
            raise ValueError("LBFGS needs a non-empty list of parameters of one dtype")
        self.lr, self.max_iter, self.history_size = lr, max_iter, history_size
        self.max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        self.tolerance_grad, self.tolerance_change, self.curvature_eps = tolerance_grad, tolerance_change, curvature_eps
        self.last_loss = math.nan
        self.iterations = self.evaluations = 0
        self._pairs: _CurvaturePairs | None = None
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None  # last move: direction, step, gradient before
        sizes = [p.numel() for p in self.params]
        self._staging = torch.empty(sum(sizes), dtype=self.params[0].dtype, device=self.params[0].device)
        self._views = [v.view_as(p) for v, p in zip(self._staging.split(sizes), self.params)]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _write(self, vector: np.ndarray) -> None:
        """Set the parameters from one flat host vector (two ops whatever their number)."""
        self._staging.copy_(torch.from_numpy(vector))
        torch._foreach_copy_(self.params, self._views)

    def _evaluate(self, closure: Closure) -> tuple[Tensor, np.ndarray]:
        """Loss and flat float64 host gradient: from the closure when it returns both, else from ``.grad``."""
        result = closure()
        if isinstance(result, tuple):
            loss, flat = result
        else:
            loss = result
            flat = torch.cat([p.grad.reshape(-1) if p.grad is not None else p.new_zeros(p.numel()) for p in self.params])
        return loss, flat.detach().cpu().numpy().astype(np.float64)

    @torch.no_grad()
    def step(self, closure: Closure) -> Tensor:
        """One L-BFGS step: up to ``max_iter`` iterations, each with a strong-Wolfe line search.

        ``closure`` re-evaluates the objective: it returns the loss after filling the ``.grad`` of
        the parameters (as for torch), or a tuple ``(loss, flat gradient)`` in parameter order."""
        closure = torch.enable_grad()(closure)
        x = torch.cat([p.reshape(-1) for p in self.params]).cpu().numpy().astype(np.float64)
        first, grad = self._evaluate(closure)
        loss = float(first)
        evals = 1
        self.evaluations += 1
        if np.abs(grad).max() <= self.tolerance_grad:
            self.last_loss = loss
            return first
        for iteration in range(1, self.max_iter + 1):
            self.iterations += 1
            if self._pairs is None:
                direction, self._pairs = -grad, _CurvaturePairs(self.history_size, grad)
            else:
                if self._last is not None:  # the pair of the previous line search
                    last_direction, last_t, last_grad = self._last
                    s, y = last_direction * last_t, grad - last_grad
                    sy = float(s @ y)
                    if sy > self.curvature_eps:
                        self._pairs.add(s, y, sy)
                    self._last = None
                direction = self._pairs.direction(grad)
            prev_loss, prev_grad = loss, grad
            t = min(1.0, 1.0 / float(np.abs(grad).sum())) * self.lr if self.iterations == 1 else self.lr
            slope = float(grad @ direction)
            if slope > -self.tolerance_change:
                break
            probed_t, probed_x = math.nan, x

            def evaluate(t_: float, d: np.ndarray = direction) -> tuple[float, np.ndarray, float]:
                nonlocal probed_t, probed_x
                probed_t, probed_x = t_, x + t_ * d
                self._write(probed_x)
                f_, g_ = self._evaluate(closure)
                return float(f_), g_, float(g_ @ d)

            d_max = float(np.abs(direction).max())
            loss, grad, t, ls_evals = strong_wolfe(evaluate, t, loss, grad, slope, d_max, tolerance_change=self.tolerance_change)
            if t != probed_t:  # the line search settled on an earlier trial point
                probed_x = x + t * direction
                self._write(probed_x)
            x = probed_x
            self._last = (direction, t, prev_grad)
            evals += ls_evals
            self.evaluations += ls_evals
            if (
                iteration == self.max_iter or evals >= self.max_eval
                or np.abs(grad).max() <= self.tolerance_grad
                or abs(t) * d_max <= self.tolerance_change or abs(loss - prev_loss) < self.tolerance_change
            ):
                break
        self.last_loss = loss
        return first
