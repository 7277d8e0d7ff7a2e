"""L-BFGS for M independent full-batch problems whose parameters are the rows of ``x [M, n]``.

Every row runs the algorithm of the single-model trainer's optimizer (:class:`kan.optim.LBFGS`,
itself ``torch.optim.LBFGS(line_search_fn="strong_wolfe")`` with compact-form directions): one
:meth:`BatchedLBFGS.step` is up to ``max_iter`` iterations per row, ending early after
``max_eval`` evaluations; each iteration takes an L-BFGS direction from the row's own curvature
pairs and runs the row's own strong-Wolfe line search (bracketing then safeguarded cubic zoom,
Nocedal & Wright alg. 3.5/3.6, torch's constants; a non-finite trial loss counts as +inf, so the
search backs off). Rows share only the evaluations: in each round every row that wants a trial
point names its step length, one batched call evaluates all rows at once, and each row's line
search (a Python coroutine) reads its own loss and slope; rows that finish a step early keep
their parameters until all rows have finished it.

Differences from the single-model optimizer, none of which couple rows: the compact-form
products (Byrd, Nocedal & Schnabel 1994) run for all rows at once on the device, with pairs in
per-row ring buffers and one ``[M, m, m]`` solve, so directions agree up to rounding; and a
step's first evaluation is skipped for a row whose parameters have not changed since its last
evaluation (it would return the same numbers; it still counts towards ``max_eval``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Generator, Sequence

import torch
from torch import Tensor

from kan.optim import keep_inside

# (loss [M], gradient [M, n]) at trial parameters [M, n]
Evaluate = Callable[[Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class _Point:
    """One evaluated trial point of a row's line search: step length, loss, slope g·d, the
    row of the batched gradient, and max |g| (for the gradient tolerance)."""

    t: float
    f: float
    slope: float
    grad: Tensor
    grad_max: float


def _cubic_minimum(a: _Point, b: _Point, low: float, high: float) -> float:
    """Minimiser of the cubic through two points with slopes, clipped to [low, high]; the middle
    of the interval when the cubic has no minimum or the data are degenerate."""
    try:
        d1 = a.slope + b.slope - 3 * (a.f - b.f) / (a.t - b.t)
        d2 = math.sqrt(d1 * d1 - a.slope * b.slope)
        if a.t <= b.t:
            t = b.t - (b.t - a.t) * (b.slope + d2 - d1) / (b.slope - a.slope + 2 * d2)
        else:
            t = a.t - (a.t - b.t) * (a.slope + d2 - d1) / (a.slope - b.slope + 2 * d2)
    except (ZeroDivisionError, ValueError, OverflowError):
        return (low + high) / 2
    return min(max(t, low), high) if math.isfinite(t) else (low + high) / 2


def strong_wolfe(
    start: _Point, t: float, d_max: float, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
    max_ls: int = 25,
) -> Generator[float, _Point, tuple[_Point, int]]:
    """A step length meeting the strong Wolfe conditions, as a coroutine: it yields the step
    lengths it wants evaluated, receives each evaluated :class:`_Point`, and returns the chosen
    point and the number of evaluations. ``start`` is t = 0 with a negative slope; ``d_max`` is
    max |d| of the direction."""
    f0, slope0 = start.f, start.slope

    def too_long(p: _Point, f_ref: float) -> bool:
        return p.f > f0 + c1 * p.t * slope0 or p.f >= f_ref

    def curvature_ok(p: _Point) -> bool:
        return abs(p.slope) <= -c2 * slope0

    point = yield t
    evals, prev, done = 1, start, False
    bracket: list[_Point] = []
    while evals <= max_ls:  # bracketing phase
        if too_long(point, prev.f if evals > 2 else math.inf):
            bracket = [prev, point]
            break
        if curvature_ok(point):
            bracket, done = [point], True
            break
        if point.slope >= 0:
            bracket = [prev, point]
            break
        low, high = point.t + 0.01 * (point.t - prev.t), 10 * point.t
        prev, t = point, _cubic_minimum(prev, point, low, high)
        point = yield t
        evals += 1
    else:
        bracket = [start, point]

    insufficient_progress = False
    while not done and evals <= max_ls:  # zoom phase
        lo, hi = (0, 1) if bracket[0].f <= bracket[1].f else (1, 0)
        left, right = sorted((bracket[0].t, bracket[1].t))
        if (right - left) * d_max < tolerance_change:
            break
        t = _cubic_minimum(bracket[0], bracket[1], left, right)
        t, insufficient_progress = keep_inside(t, left, right, insufficient_progress)
        point = yield t
        evals += 1
        if too_long(point, bracket[lo].f):
            bracket[hi] = point
            continue
        if curvature_ok(point):
            done = True
        elif point.slope * (bracket[hi].t - bracket[lo].t) >= 0:
            bracket[hi] = bracket[lo]
        bracket[lo] = point
    best = bracket[0] if len(bracket) == 1 or bracket[0].f <= bracket[1].f else bracket[1]
    return best, evals


class _Pairs:
    """Per-row ring buffers of the last ``m`` curvature pairs and the compact-form mixing matrix
    with ``-H·g = -γ·g + Wᵀ·(mixer·(W·g))``, ``W = [S; Y]`` ``[M, 2m, n]``."""

    def __init__(self, rows: int, size: int, like: Tensor) -> None:
        self.size = size
        self.w = like.new_zeros(rows, 2 * size, like.shape[1])  # rows 0..m-1: s, m..2m-1: y
        self.sy = like.new_zeros(rows, size, size, dtype=torch.float64)  # s_i · y_j
        self.yy = like.new_zeros(rows, size, size, dtype=torch.float64)  # y_i · y_j
        self.stamp = like.new_full((rows, size), -1, dtype=torch.long)  # insertion counter, -1 empty
        self.count = like.new_zeros(rows, dtype=torch.long)
        self.gamma = like.new_ones(rows, dtype=torch.float64)
        self.mixer = like.new_zeros(rows, 2 * size, 2 * size, dtype=torch.float64)

    def add(self, s: Tensor, y: Tensor, accept: Tensor) -> None:
        """Store (s, y) ``[M, n]`` in the rows where ``accept`` ``[M]`` (bool) holds."""
        m, rows = self.size, torch.arange(s.shape[0], device=s.device)
        slot = self.count % m
        new = torch.stack([s, y], dim=1)  # [M, 2, n]
        keep = ~accept[:, None]
        self.w[rows, slot] = torch.where(keep, self.w[rows, slot], s)
        self.w[rows, m + slot] = torch.where(keep, self.w[rows, m + slot], y)
        dots = torch.bmm(self.w, new.transpose(1, 2)).double()  # [M, 2m, 2]: (s_i, y_i) · (s, y)
        sy_col, sy_row, yy = dots[:, :m, 1], dots[:, m:, 0], dots[:, m:, 1]  # s_i·y, y_i·s, y_i·y
        take = accept[:, None]
        self.sy[rows, :, slot] = torch.where(take, sy_col, self.sy[rows, :, slot])
        self.sy[rows, slot, :] = torch.where(take, sy_row, self.sy[rows, slot, :])
        self.yy[rows, :, slot] = torch.where(take, yy, self.yy[rows, :, slot])
        self.yy[rows, slot, :] = torch.where(take, yy, self.yy[rows, slot, :])
        self.stamp[rows, slot] = torch.where(accept, self.count, self.stamp[rows, slot])
        newest_sy, newest_yy = sy_col[rows, slot], yy[rows, slot]
        self.gamma = torch.where(accept, newest_sy / newest_yy, self.gamma)
        self.count = self.count + accept.long()
        self._build_mixer()

    def _build_mixer(self) -> None:
        # H = γI + [S Y] [[R⁻ᵀ(D + γYᵀY)R⁻¹, -γR⁻ᵀ], [-γR⁻¹, 0]] [S Y]ᵀ with R = triu(SᵀY) in
        # chronological order (Byrd, Nocedal & Schnabel 1994, thm 2.2). Slots are a permutation of
        # chronological order, so R is kept in slot order with its entries picked by the stamps
        # (a permuted triangular matrix); empty slots get a unit diagonal and meet zero rows of W.
        filled = self.stamp >= 0  # [M, m]
        both = filled[:, :, None] & filled[:, None, :]
        earlier = self.stamp[:, :, None] <= self.stamp[:, None, :]
        eye = torch.eye(self.size, dtype=torch.float64, device=self.sy.device)
        r = torch.where(both & earlier, self.sy, 0.0) + torch.where(filled[:, :, None], 0.0, eye)
        diag = torch.diag_embed(torch.diagonal(r, dim1=1, dim2=2))
        r_inv = torch.linalg.solve(r, eye.expand_as(r))
        gamma = self.gamma[:, None, None]
        middle = r_inv.transpose(1, 2) @ (diag + gamma * torch.where(both, self.yy, 0.0)) @ r_inv
        m = self.size
        self.mixer[:, :m, :m] = -middle
        self.mixer[:, :m, m:] = gamma * r_inv.transpose(1, 2)
        self.mixer[:, m:, :m] = gamma * r_inv

    def direction(self, grad: Tensor) -> Tensor:
        """``-H·g`` for every row, ``[M, n]`` (``-g`` for rows without pairs)."""
        coeff = (self.mixer @ torch.bmm(self.w, grad.unsqueeze(-1)).double()).to(grad.dtype)  # [M, 2m, 1]
        return torch.bmm(self.w.transpose(1, 2), coeff).squeeze(-1) - self.gamma.to(grad.dtype)[:, None] * grad


_HERE = "here"  # request: evaluate at the current parameters
_DIRECTION = "direction"  # request: a new L-BFGS direction; reply (slope, max |d|, |g|_1)
Request = float | str | _Point  # a step length to evaluate, _HERE, _DIRECTION, or a point to move to


class BatchedLBFGS:
    """L-BFGS with strong-Wolfe line searches for the rows of ``x [M, n]``, each row on its own
    (see the module docstring). ``x`` may be replaced between steps by a tensor of the same shape."""

    def __init__(
        self, x: Tensor, lr: float = 1.0, max_iter: int = 20, max_eval: int | None = None,
        tolerance_grad: float = 1e-7, tolerance_change: float = 1e-9, history_size: int = 10,
        curvature_eps: float = 1e-10,
    ) -> None:
        if lr <= 0 or max_iter < 1 or history_size < 1:
            raise ValueError(f"need lr > 0, max_iter >= 1, history_size >= 1; got {lr}, {max_iter}, {history_size}")
        self._x = x
        self._known: dict[int, _Point] = {}  # rows whose loss and gradient at x are known
        self.lr, self.max_iter = lr, max_iter
        self.max_eval = max_iter * 5 // 4 if max_eval is None else max_eval
        self.tolerance_grad, self.tolerance_change, self.curvature_eps = tolerance_grad, tolerance_change, curvature_eps
        rows = x.shape[0]
        self.loss = [math.nan] * rows  # per row: loss at the parameters the last step left
        self._iterations = [0] * rows  # per row, over all steps (torch's state["n_iter"])
        self._pairs = _Pairs(rows, history_size, x)
        self._direction = torch.zeros_like(x)  # last direction d
        self._t = x.new_zeros(rows)  # last step length t
        self._grad = torch.zeros_like(x)  # gradient at x
        self._prev_grad = torch.zeros_like(x)  # gradient where the last direction was taken

    @property
    def x(self) -> Tensor:
        """Current parameters ``[M, n]``."""
        return self._x

    @x.setter
    def x(self, value: Tensor) -> None:
        """A new tensor (e.g. after a grid update, which also changes the objective) forgets every
        row's known loss and gradient; the curvature history is kept, as torch.optim.LBFGS does."""
        if value is not self._x:
            self._known.clear()
        self._x = value

    def step(self, evaluate: Evaluate, active: Sequence[int]) -> None:
        """One L-BFGS step for every row in ``active``; other rows keep their parameters."""
        rows = {m: self._row_step(m) for m in active}
        pending: dict[int, Request] = {}

        def advance(m: int, reply: object) -> None:
            try:
                pending[m] = rows[m].send(reply)
            except StopIteration:
                del pending[m]

        for m, gen in rows.items():
            pending[m] = next(gen)  # _HERE
            if m in self._known:
                advance(m, self._known[m])
        while pending:
            moves = {m: r for m, r in pending.items() if isinstance(r, _Point)}
            if moves:
                self._move(moves)
                for m in moves:
                    advance(m, None)
            wanting = [m for m, r in pending.items() if r == _DIRECTION]
            if wanting:
                for m, info in zip(wanting, self._new_directions(wanting)):
                    advance(m, info)
            trials = {m: r for m, r in pending.items() if not isinstance(r, _Point) and r != _DIRECTION}
            if trials:
                for m, point in self._evaluate(evaluate, trials).items():
                    advance(m, point)

    def _row_step(self, m: int) -> Generator[Request, object, None]:
        """The single-row algorithm; yields requests that :meth:`step` serves in batches."""
        here = yield _HERE
        assert isinstance(here, _Point)
        self.loss[m] = here.f
        if here.grad_max <= self.tolerance_grad:
            return
        evals = 1
        for iteration in range(1, self.max_iter + 1):
            self._iterations[m] += 1
            slope, d_max, grad_l1 = yield _DIRECTION  # type: ignore[misc]
            t = min(1.0, 1.0 / grad_l1) * self.lr if self._iterations[m] == 1 else self.lr
            if slope > -self.tolerance_change:
                return
            start = _Point(0.0, here.f, slope, here.grad, here.grad_max)
            point, searched = yield from strong_wolfe(start, t, d_max, tolerance_change=self.tolerance_change)
            yield point  # move there
            evals += searched
            self.loss[m], previous, here = point.f, here.f, point
            if (
                iteration == self.max_iter or evals >= self.max_eval or point.grad_max <= self.tolerance_grad
                or abs(point.t) * d_max <= self.tolerance_change or abs(point.f - previous) < self.tolerance_change
            ):
                return

    def _mask(self, rows: Sequence[int]) -> Tensor:
        mask = torch.zeros(self.x.shape[0], dtype=torch.bool)
        mask[list(rows)] = True
        return mask.to(self.x.device)

    def _trial(self, steps: Tensor) -> Tensor:
        """``x + t·d`` per row (the one expression for trial points and moves)."""
        return torch.addcmul(self._x, self._direction, steps[:, None])

    def _take_grads(self, points: dict[int, _Point]) -> None:
        """``_grad[m] = points[m]`` gradient rows, one indexed copy per source tensor."""
        by_source: dict[int, tuple[Tensor, list[int]]] = {}
        for m, point in points.items():
            by_source.setdefault(id(point.grad), (point.grad, []))[1].append(m)
        for source, rows in by_source.values():
            index = torch.tensor(rows, device=source.device)
            self._grad[index] = source[index]

    def _move(self, moves: dict[int, _Point]) -> None:
        steps = [0.0] * self.x.shape[0]
        for m, point in moves.items():
            steps[m] = point.t
        t = torch.tensor(steps, dtype=self.x.dtype, device=self.x.device)
        moving = self._mask(list(moves))
        self._x = torch.where(moving[:, None], self._trial(t), self._x)
        self._t = torch.where(moving, t, self._t)
        self._take_grads(moves)
        self._known.update(moves)

    def _new_directions(self, rows: Sequence[int]) -> list[tuple[float, float, float]]:
        """Curvature update and new direction for ``rows``; (slope g·d, max |d|, |g|_1) per row."""
        wanting = self._mask(rows)
        later = self._mask([m for m in rows if self._iterations[m] > 1])
        s = self._direction * self._t[:, None]
        y = self._grad - self._prev_grad
        accept = later & (torch.linalg.vecdot(s, y) > self.curvature_eps)
        self._pairs.add(s, y, accept)
        self._direction = torch.where(wanting[:, None], self._pairs.direction(self._grad), self._direction)
        self._prev_grad = torch.where(wanting[:, None], self._grad, self._prev_grad)
        stats = torch.stack([
            torch.linalg.vecdot(self._grad, self._direction), self._direction.abs().amax(dim=1),
            self._grad.abs().sum(dim=1),
        ]).tolist()
        return [(stats[0][m], stats[1][m], stats[2][m]) for m in rows]

    def _evaluate(self, evaluate: Evaluate, trials: dict[int, Request]) -> dict[int, _Point]:
        steps = [0.0] * self.x.shape[0]
        for m, request in trials.items():
            steps[m] = 0.0 if request == _HERE else float(request)  # type: ignore[arg-type]
        searching = self._mask([m for m, r in trials.items() if r != _HERE])
        t = torch.tensor(steps, dtype=self.x.dtype, device=self.x.device)
        loss, grad = evaluate(torch.where(searching[:, None], self._trial(t), self._x))
        finite = torch.isfinite(loss)
        grad = torch.where(finite[:, None], grad, 0.0)  # as a closure that skips backward on a bad loss
        stats = torch.stack([
            loss.to(grad.dtype), torch.linalg.vecdot(grad, self._direction), grad.abs().amax(dim=1)
        ]).tolist()
        points = {}
        for m, request in trials.items():
            f = stats[0][m]
            points[m] = _Point(steps[m], f if math.isfinite(f) else math.inf, stats[1][m], grad, stats[2][m])
        here = {m: p for m, p in points.items() if trials[m] == _HERE}
        if here:
            self._take_grads(here)
            self._known.update(here)
        return points
