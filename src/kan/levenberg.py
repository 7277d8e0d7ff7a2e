"""A small Levenberg–Marquardt solver for least squares in a handful of parameters.

It exists because the result must be bitwise repeatable: SciPy's MINPACK-based
``least_squares(method="lm")`` (1.17) returned different optima for identical inputs depending on
the process's memory layout on ill-conditioned fits such as ``c·cosh(a·x + b)``, which made the
symbolic snaps, and everything trained after them, vary between runs. Here every sum runs in a
fixed order (elementwise products reduced by PyTorch, a hand-written Cholesky solve).

Steps solve ``(JᵀJ + μ·diag(JᵀJ)) δ = −Jᵀr`` (Marquardt's scaling) and ``μ`` follows Nielsen's
update from the gain ratio ``ρ`` of actual to predicted reduction of ``‖r‖²``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

ResidualAndJacobian = Callable[[Tensor], tuple[Tensor, Tensor]]


def levenberg_marquardt(
    residual_and_jacobian: ResidualAndJacobian,
    start: Tensor,
    max_evaluations: int = 100,
    xtol: float = 1e-14,
    ftol: float = 1e-14,
) -> Tensor:
    """Minimise ``‖r(p)‖²`` from ``start``; ``residual_and_jacobian(p)`` returns ``r [m]`` and
    ``J [m, n]``. Stops when a step changes ``p`` by at most ``xtol·(‖p‖ + xtol)`` or ``‖r‖²``
    by at most ``ftol·‖r‖²``, or after ``max_evaluations`` calls. Non-finite residuals count as
    failed steps; a non-finite start is returned unchanged."""
    p = start.detach().to(torch.float64).clone()
    r, jac = residual_and_jacobian(p)
    cost = _sum_of_squares(r)
    if not math.isfinite(cost):
        return p
    normal, gradient = _normal_equations(r, jac)
    mu, nu = 1e-3, 2.0  # relative to diag(JᵀJ)
    for _ in range(max_evaluations - 1):
        scale = _marquardt_scale(normal)
        step = _solve_damped(normal, scale, mu, [-g for g in gradient])
        if step is None:
            mu, nu = mu * nu, nu * 2.0
            continue
        candidate = p + torch.tensor(step, dtype=torch.float64)
        r_new, jac_new = residual_and_jacobian(candidate)
        cost_new = _sum_of_squares(r_new)
        predicted = sum(s * (mu * d * s - g) for s, d, g in zip(step, scale, gradient))
        gain = (cost - cost_new) / predicted if math.isfinite(cost_new) and predicted > 0 else -1.0
        if gain <= 0:
            mu, nu = mu * nu, nu * 2.0
            continue
        small_step = math.sqrt(sum(s * s for s in step)) <= xtol * (float(p.norm()) + xtol)
        small_gain = cost - cost_new <= ftol * cost
        p, cost = candidate, cost_new
        normal, gradient = _normal_equations(r_new, jac_new)
        mu, nu = mu * max(1.0 / 3.0, 1.0 - (2.0 * gain - 1.0) ** 3), 2.0
        if small_step or small_gain:
            break
    return p


def _sum_of_squares(r: Tensor) -> float:
    return float((r * r).sum())


def _normal_equations(r: Tensor, jac: Tensor) -> tuple[list[list[float]], list[float]]:
    """``JᵀJ`` and ``Jᵀr`` as Python lists (elementwise products, then a column sum)."""
    jac = torch.nan_to_num(jac, nan=0.0, posinf=0.0, neginf=0.0)
    normal = (jac[:, :, None] * jac[:, None, :]).sum(0)
    gradient = (jac * r[:, None]).sum(0)
    return normal.tolist(), gradient.tolist()


def _marquardt_scale(normal: list[list[float]]) -> list[float]:
    """``diag(JᵀJ)`` with zero entries (parameters the residual ignores) lifted to a tiny share
    of the largest, so the damped system stays positive definite."""
    diagonal = [normal[i][i] for i in range(len(normal))]
    floor = max(max(diagonal), 1e-300) * 1e-12
    return [max(d, floor) for d in diagonal]


def _solve_damped(normal: list[list[float]], scale: list[float], mu: float, rhs: list[float]) -> list[float] | None:
    """Solve ``(JᵀJ + μ·diag(scale)) δ = rhs`` by Cholesky; ``None`` if not positive definite."""
    n = len(rhs)
    lower = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            value = normal[i][j] + (mu * scale[i] if i == j else 0.0) - sum(lower[i][k] * lower[j][k] for k in range(j))
            if i == j:
                if not value > 0.0 or not math.isfinite(value):
                    return None
                lower[i][i] = math.sqrt(value)
            else:
                lower[i][j] = value / lower[j][j]
    forward = [0.0] * n
    for i in range(n):
        forward[i] = (rhs[i] - sum(lower[i][k] * forward[k] for k in range(i))) / lower[i][i]
    solution = [0.0] * n
    for i in reversed(range(n)):
        solution[i] = (forward[i] - sum(lower[k][i] * solution[k] for k in range(i + 1, n))) / lower[i][i]
    return solution
