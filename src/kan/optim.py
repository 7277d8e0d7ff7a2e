"""Full-batch L-BFGS with a strong-Wolfe line search, for one problem or a fleet of independent ones.

The algorithm and its step counting follow ``torch.optim.LBFGS(line_search_fn="strong_wolfe")``:
one step runs up to ``max_iter`` iterations and stops early after ``max_eval`` evaluations. Each
problem keeps its state on the host as flat float64 numpy vectors (numpy costs a fraction of small
torch ops per call, and float64 iterates keep tiny late steps exact for float32 models); its
inverse-Hessian product uses the compact form of Byrd, Nocedal & Schnabel (1994) (two
matrix-vector products instead of 4m vector ops) and its line search runs on Python floats.

A problem's step and its line search are coroutines: they yield the points they want evaluated
and receive the loss and gradient there. :class:`LBFGS` serves one problem from a closure (the
drop-in for torch's optimizer); :class:`FleetLBFGS` serves M problems, the rows of ``x [M, n]``,
with one batched evaluation per round. A row's arithmetic never depends on the other rows, so
each row takes the iterates it would take alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Iterable, Mapping, Sequence, TypeVar

import numpy as np
import torch
from scipy.linalg.lapack import dtrtri
from torch import Tensor

Closure = Callable[[], "Tensor | tuple[Tensor, Tensor]"]
# (trial parameters [R, n] of rows ``rows``, rows) -> (losses [R], gradients [R, n]), in the order of ``rows``
Evaluate = Callable[[Tensor, list[int]], tuple[Tensor, Tensor]]
Trial = tuple[float, np.ndarray, float]  # what a line search receives for a step length: (loss, gradient, slope g·d)
Search = Generator[float, Trial, tuple[float, np.ndarray, float, int]]  # see strong_wolfe
Point = np.ndarray | None  # a point a problem wants evaluated; None: its parameters as they stand
Step = Generator[Point, tuple[float, np.ndarray], tuple[np.ndarray, float, np.ndarray]]  # see _Problem.step
Result = TypeVar("Result")


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
    t: float, f0: float, g0: np.ndarray, slope0: float, d_max: float,
    c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9, max_ls: int = 25,
) -> Search:
    """Step length satisfying the strong Wolfe conditions along a descent direction, as a coroutine.

    It yields each step length it wants evaluated and receives ``(f, grad, grad · d)`` there; it
    returns ``(f, grad, t, evaluations)`` at the chosen step. ``slope0 = g0 · d < 0``;
    ``d_max = max|d|``. Brackets an acceptable step by extrapolation, then zooms in with
    safeguarded cubic interpolation (Nocedal & Wright, alg. 3.5/3.6). A non-finite loss counts as
    +inf (too long).
    """

    def too_long(t_: float, f_: float, f_ref: float) -> bool:
        return f_ > f0 + c1 * t_ * slope0 or f_ >= f_ref

    def probe(t_: float) -> Generator[float, Trial, Trial]:
        f_, g_, slope_ = yield t_
        return (f_ if math.isfinite(f_) else math.inf), g_, slope_

    f, g, slope = yield from probe(t)
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
        f, g, slope = yield from probe(t)
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
        f, g, slope = yield from probe(t)
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


@dataclass(frozen=True)
class LBFGSOptions:
    """Settings of an L-BFGS run (torch's names and defaults; ``max_eval`` None: ``max_iter * 5 // 4``)."""

    lr: float = 1.0
    max_iter: int = 20
    max_eval: int | None = None
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    history_size: int = 10
    curvature_eps: float = 1e-10

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.max_iter < 1 or self.history_size < 1:
            raise ValueError(f"need lr > 0, max_iter >= 1, history_size >= 1; got {self.lr}, {self.max_iter}, {self.history_size}")
        if self.max_eval is None:
            object.__setattr__(self, "max_eval", self.max_iter * 5 // 4)


class _Problem:
    """One problem's L-BFGS memory (curvature pairs, last move, counters) and its step as a coroutine."""

    def __init__(self, options: LBFGSOptions) -> None:
        self.options = options
        self.last_loss = math.nan  # the loss at the parameters the last step left
        self.iterations = self.evaluations = 0  # over all steps (torch's state["n_iter"] and "func_evals")
        self._pairs: _CurvaturePairs | None = None
        self._last: tuple[np.ndarray, float, np.ndarray] | None = None  # last move: direction, step, gradient before

    def step(self, x: np.ndarray) -> Step:
        """One L-BFGS step from ``x``: up to ``max_iter`` iterations, each with a strong-Wolfe line
        search. Yields the points to evaluate (None first: ``x`` as the parameters stand) and
        receives ``(loss, gradient)`` at each; returns the point it ends at (the very array of its
        last trial when it ends there) with the loss and gradient there."""
        options = self.options
        loss, grad = yield None
        self.evaluations += 1
        evals = 1
        if np.abs(grad).max() <= options.tolerance_grad:
            self.last_loss = loss
            return x, loss, grad
        for iteration in range(1, options.max_iter + 1):
            self.iterations += 1
            direction = self._direction(grad)
            prev_loss, prev_grad = loss, grad
            t = min(1.0, 1.0 / float(np.abs(grad).sum())) * options.lr if self.iterations == 1 else options.lr
            slope = float(grad @ direction)
            if slope > -options.tolerance_change:
                break
            d_max = float(np.abs(direction).max())
            search = strong_wolfe(t, loss, grad, slope, d_max, tolerance_change=options.tolerance_change)
            x, (loss, grad, t, searched) = yield from self._line_search(search, x, direction)
            self._last = (direction, t, prev_grad)
            evals += searched
            if (
                iteration == options.max_iter or evals >= options.max_eval
                or np.abs(grad).max() <= options.tolerance_grad
                or abs(t) * d_max <= options.tolerance_change or abs(loss - prev_loss) < options.tolerance_change
            ):
                break
        self.last_loss = loss
        return x, loss, grad

    def _direction(self, grad: np.ndarray) -> np.ndarray:
        """The L-BFGS direction at ``grad``, after storing the curvature pair of the last move."""
        if self._pairs is None:
            self._pairs = _CurvaturePairs(self.options.history_size, grad)
            return -grad
        if self._last is not None:
            last_direction, last_t, last_grad = self._last
            s, y = last_direction * last_t, grad - last_grad
            sy = float(s @ y)
            if sy > self.options.curvature_eps:
                self._pairs.add(s, y, sy)
            self._last = None
        return self._pairs.direction(grad)

    def _line_search(
        self, search: Search, x: np.ndarray, direction: np.ndarray,
    ) -> Generator[Point, tuple[float, np.ndarray], tuple[np.ndarray, tuple[float, np.ndarray, float, int]]]:
        """Run ``search`` along ``x + t·direction``; returns the point it settles on and its result."""
        request = next(search)
        while True:
            probed_t, probed = request, x + request * direction
            f, g = yield probed
            self.evaluations += 1
            try:
                request = search.send((f, g, float(g @ direction)))
            except StopIteration as stop:
                t = stop.value[2]
                return (probed if t == probed_t else x + t * direction), stop.value


def _lockstep(
    steps: Mapping[int, Generator[Point, tuple[float, np.ndarray], Result]],
    serve: Callable[[dict[int, Point]], dict[int, tuple[float, np.ndarray]]],
) -> dict[int, Result]:
    """Drive coroutines that request evaluations until all return: each round, ``serve`` answers
    every pending request at once. Returns each coroutine's result by key."""
    pending: dict[int, Point] = {}
    results: dict[int, Result] = {}

    def advance(key: int, reply: tuple[float, np.ndarray] | None) -> None:
        try:
            pending[key] = steps[key].send(reply)  # type: ignore[arg-type]
        except StopIteration as stop:
            pending.pop(key, None)
            results[key] = stop.value

    for key in steps:
        advance(key, None)
    while pending:
        for key, reply in serve(dict(pending)).items():
            advance(key, reply)
    return results


class LBFGS:
    """L-BFGS for full-batch objectives; a drop-in for ``torch.optim.LBFGS`` with strong Wolfe.

    ``step(closure)`` returns the loss of the first evaluation (as torch does); the loss at the
    parameters it leaves behind is :attr:`last_loss`. Parameters must share one dtype; they are
    written with two ops per trial point. Not a ``torch.optim.Optimizer`` subclass: building one of
    those imports torch._dynamo, seconds of start-up for a short fit.
    """

    def __init__(
        self, params: Iterable[Tensor], lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
        tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 10,
        curvature_eps: float = 1e-10,
    ) -> None:
        options = LBFGSOptions(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size, curvature_eps)
        self.params = list(params)
        if not self.params or len({p.dtype for p in self.params}) != 1:
            raise ValueError("LBFGS needs a non-empty list of parameters of one dtype")
        self._problem = _Problem(options)
        sizes = [p.numel() for p in self.params]
        self._staging = torch.empty(sum(sizes), dtype=self.params[0].dtype, device=self.params[0].device)
        self._views = [v.view_as(p) for v, p in zip(self._staging.split(sizes), self.params)]

    @property
    def last_loss(self) -> float:
        """The loss at the parameters the last step left (NaN before the first step)."""
        return self._problem.last_loss

    @property
    def iterations(self) -> int:
        """Iterations over all steps."""
        return self._problem.iterations

    @property
    def evaluations(self) -> int:
        """Closure evaluations over all steps."""
        return self._problem.evaluations

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
        first: list[Tensor] = []  # the loss of the first evaluation
        written = x

        def serve(requests: dict[int, Point]) -> dict[int, tuple[float, np.ndarray]]:
            nonlocal written
            (point,) = requests.values()
            if point is not None:
                self._write(point)
                written = point
            loss, grad = self._evaluate(closure)
            if not first:
                first.append(loss)
            return {0: (float(loss), grad)}

        end = _lockstep({0: self._problem.step(x)}, serve)[0][0]
        if end is not written:  # the line search settled on an earlier trial point
            self._write(end)
        return first[0]


class FleetLBFGS:
    """L-BFGS for M independent problems whose parameters are the rows of ``x [M, n]``.

    Every row is a problem of its own (state, directions, line search, as :class:`LBFGS`); rows
    share only the evaluations: each round, one call of ``evaluate`` on the trial parameters of the
    rows that want a point evaluated (and only those) serves them all; rows that want none (or have
    finished their step) sit at their parameters. A step's first evaluation is skipped for a row
    whose parameters are those this optimizer returned last (the tensor itself, not modified since).
    """

    def __init__(self, rows: int, options: LBFGSOptions) -> None:
        self._problems = [_Problem(options) for _ in range(rows)]
        self._known: dict[int, tuple[float, np.ndarray]] = {}  # row -> (loss, gradient) at the parameters returned
        self._returned: tuple[Tensor, int] | None = None  # the last parameters returned and their version

    @property
    def loss(self) -> list[float]:
        """Per row: the loss at the parameters its last step left."""
        return [problem.last_loss for problem in self._problems]

    @torch.no_grad()
    def step(self, x: Tensor, evaluate: Evaluate, active: Sequence[int]) -> Tensor:
        """One L-BFGS step for every row in ``active``; returns the new parameters (a new tensor of
        ``x``'s dtype and device; other rows as they were). ``evaluate`` maps the trial parameters of
        some rows to their losses and gradients (see :data:`Evaluate`); it runs with gradients enabled."""
        evaluate = torch.enable_grad()(evaluate)
        if self._returned is None or self._returned[0] is not x or self._returned[1] != x._version:
            self._known.clear()
        start = x.detach().cpu().numpy().astype(np.float64)

        def serve(requests: dict[int, Point]) -> dict[int, tuple[float, np.ndarray]]:
            replies = {m: self._known.pop(m) for m, point in requests.items() if point is None and m in self._known}
            wanted = {m: point for m, point in requests.items() if m not in replies}
            if wanted:
                rows = sorted(wanted)
                trial = np.stack([start[m] if wanted[m] is None else wanted[m] for m in rows])
                losses, grads = evaluate(torch.from_numpy(trial).to(device=x.device, dtype=x.dtype), rows)
                host_losses, host_grads = losses.tolist(), grads.detach().cpu().numpy().astype(np.float64)
                replies |= {m: (host_losses[i], host_grads[i]) for i, m in enumerate(rows)}
            return replies

        ends = _lockstep({m: self._problems[m].step(start[m]) for m in active}, serve)
        for m, (point, loss, grad) in ends.items():
            start[m] = point
            self._known[m] = (loss, grad)
        result = torch.from_numpy(start).to(device=x.device, dtype=x.dtype)
        self._returned = (result, result._version)
        return result
