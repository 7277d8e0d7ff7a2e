"""Our L-BFGS against the textbook recursion, the strong Wolfe conditions and torch.optim.LBFGS;
a fleet of problems against each problem alone."""

import math

import numpy as np
import pytest
import torch

from kan import KAN
from kan.optim import LBFGS, FleetLBFGS, LBFGSOptions, _CurvaturePairs, strong_wolfe

F64 = torch.float64


def _two_loop(grad, pairs):
    """Reference -H·g by the classic two-loop recursion (Nocedal & Wright, alg. 7.4)."""
    q, alphas = -grad.copy(), []
    for s, y in reversed(pairs):
        alphas.append((s @ q) / (y @ s))
        q -= alphas[-1] * y
    s, y = pairs[-1]
    r = q * (s @ y) / (y @ y)
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        r += s * (alpha - (y @ r) / (y @ s))
    return r


def test_compact_direction_equals_two_loop_recursion():
    rng = np.random.default_rng(0)
    n, m = 40, 6
    a = rng.normal(size=(n, n))
    hessian = a @ a.T / n + np.eye(n)
    pairs, memory = [], _CurvaturePairs(m, np.zeros(n))
    for _ in range(m + 4):  # wraps around the ring buffer
        s = rng.normal(size=n)
        y = hessian @ s
        memory.add(s, y, float(s @ y))
        pairs = (pairs + [(s, y)])[-m:]
    grad = rng.normal(size=n)
    expected = _two_loop(grad, pairs)
    assert np.allclose(memory.direction(grad), expected, rtol=1e-10, atol=1e-12)


def _line_search(fn, x0, direction, t):
    """Drive :func:`strong_wolfe` along ``x0 + t·direction`` for ``fn(x) -> (f, grad)``; returns
    (f, grad, t, evaluations) and the slope at t = 0."""
    f0, g0 = fn(x0)
    slope0 = float(g0 @ direction)
    search = strong_wolfe(t, f0, g0, slope0, float(np.abs(direction).max()))
    request = next(search)
    while True:
        f, g = fn(x0 + request * direction)
        try:
            request = search.send((f, g, float(g @ direction)))
        except StopIteration as stop:
            return stop.value, slope0


def _assert_strong_wolfe(fn, x0, direction, t):
    (f, grad, t, evals), slope0 = _line_search(fn, x0, direction, t)
    f0 = fn(x0)[0]
    assert f <= f0 + 1e-4 * t * slope0, "sufficient decrease"
    assert abs(float(fn(x0 + t * direction)[1] @ direction)) <= 0.9 * abs(slope0), "curvature"
    assert f == fn(x0 + t * direction)[0] and evals <= 25
    return t


def _quadratic(x):
    target = np.array([3.0, -1.0])
    return float(((x - target) ** 2).sum()), 2 * (x - target)


@pytest.mark.parametrize("initial_step", [0.1, 1.0, 10.0])  # extrapolate, accept, zoom
def test_strong_wolfe_conditions_hold_on_a_quadratic(initial_step):
    t = _assert_strong_wolfe(_quadratic, np.zeros(2), np.array([1.0, 0.0]), initial_step)
    assert 0.3 < t < 5.7  # the acceptable interval on this line


def _rosenbrock(x):
    a, b = x
    grad = np.array([-2 * (1 - a) - 400 * a * (b - a**2), 200 * (b - a**2)])
    return float((1 - a) ** 2 + 100 * (b - a**2) ** 2), grad


@pytest.mark.parametrize("start", [(-1.2, 1.0), (0.0, 0.0), (1.5, 1.5), (-1.5, 2.0)])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])  # times 1/|g|_1, L-BFGS's first trial step
def test_strong_wolfe_conditions_hold_on_rosenbrock(start, scale):
    x0 = np.array(start)
    grad = _rosenbrock(x0)[1]
    _assert_strong_wolfe(_rosenbrock, x0, -grad, scale / np.abs(grad).sum())


def test_line_search_backs_off_a_non_finite_loss():
    def fn(x):
        return (math.nan, np.full(2, math.nan)) if x[0] > 4 else _quadratic(x)

    t = _assert_strong_wolfe(fn, np.zeros(2), np.array([1.0, 0.0]), 100.0)
    assert 0.3 < t < 4


def test_rosenbrock_reaches_the_minimum():
    point = torch.tensor([-1.5, 2.0], dtype=F64, requires_grad=True)
    optimizer = LBFGS([point], max_iter=50, tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        optimizer.zero_grad()
        loss = (1 - point[0]) ** 2 + 100 * (point[1] - point[0] ** 2) ** 2
        loss.backward()
        return loss

    for _ in range(5):
        optimizer.step(closure)
    assert torch.allclose(point.detach(), torch.ones(2, dtype=F64), atol=1e-6)
    assert optimizer.last_loss < 1e-12


def test_closure_may_return_the_flat_gradient():
    """(loss, flat gradient) closures give the same iterates as .grad closures."""
    target = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    runs = []
    for as_tuple in (False, True):
        a, b = torch.zeros(2, dtype=F64, requires_grad=True), torch.zeros(1, dtype=F64, requires_grad=True)
        optimizer = LBFGS([a, b], tolerance_grad=1e-32, tolerance_change=1e-32)

        def closure():
            optimizer.zero_grad()
            flat = torch.cat([a, b])
            loss = ((flat - target) ** 4).sum() + ((flat - target) ** 2).sum()
            loss.backward()
            return (loss, torch.cat([a.grad, b.grad])) if as_tuple else loss

        optimizer.step(closure)
        runs.append((torch.cat([a, b]).detach(), optimizer.evaluations))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]


def test_non_finite_loss_makes_the_line_search_back_off():
    point = torch.tensor([0.5], dtype=F64, requires_grad=True)
    optimizer = LBFGS([point], lr=1e3)

    def closure():
        optimizer.zero_grad()
        loss = -torch.log(1 - point**2).sum() + (point - 0.3).pow(2).sum()  # NaN for |x| >= 1
        if torch.isfinite(loss):
            loss.backward()
        return loss

    optimizer.step(closure)
    assert math.isfinite(optimizer.last_loss) and abs(point.item()) < 1


def _toy(seed, n=1000):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(2 * n, 2, dtype=F64, generator=gen) * 2 - 1
    y = torch.exp(torch.sin(math.pi * x[:, :1]) + x[:, 1:2] ** 2)
    return x[:n], y[:n], x[n:], y[n:]


def _mse_closure(model, optimizer, x, y):
    def closure():
        optimizer.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        return loss

    return closure


def _fit_rmse(make_optimizer, seed, steps):
    x, y, x_test, y_test = _toy(seed)
    model = KAN([2, 5, 1], num_intervals=5, dtype=F64, seed=seed)
    optimizer = make_optimizer(list(model.parameters()))
    closure = _mse_closure(model, optimizer, x, y)
    for _ in range(steps):
        optimizer.step(closure)
    with torch.no_grad():
        return math.sqrt(torch.mean((model(x_test) - y_test) ** 2).item())


def test_toy_fit_is_as_accurate_as_torch_lbfgs():
    """exp(sin(πx) + y²), [2,5,1], G = 5, 1000 points: same model, seed and step budget."""
    options = dict(lr=1.0, max_iter=20, history_size=10, tolerance_grad=1e-32, tolerance_change=1e-32)
    ours, theirs = [], []
    for seed in (0, 1):
        ours.append(_fit_rmse(lambda p: LBFGS(p, curvature_eps=1e-32, **options), seed, 40))
        theirs.append(_fit_rmse(lambda p: torch.optim.LBFGS(p, line_search_fn="strong_wolfe", **options), seed, 40))
    assert np.exp(np.mean(np.log(ours))) <= 1.1 * np.exp(np.mean(np.log(theirs))), (ours, theirs)


def test_one_step_runs_max_iter_iterations_like_torch():
    x, y, _, _ = _toy(0, 200)
    counts = []
    for make in (lambda p: LBFGS(p, tolerance_grad=1e-32, tolerance_change=1e-32),
                 lambda p: torch.optim.LBFGS(p, line_search_fn="strong_wolfe", tolerance_grad=1e-32,
                                             tolerance_change=1e-32)):
        model = KAN([2, 3, 1], dtype=F64)
        optimizer = make(list(model.parameters()))
        optimizer.step(_mse_closure(model, optimizer, x, y))
        state = getattr(optimizer, "iterations", None)
        counts.append(state if state is not None else optimizer.state[optimizer._params[0]]["n_iter"])
    assert counts == [20, 20]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lr > 0"):
        LBFGS([torch.zeros(1, requires_grad=True)], lr=0)
    with pytest.raises(ValueError, match="one dtype"):
        LBFGS([torch.zeros(1, requires_grad=True), torch.zeros(1, dtype=F64, requires_grad=True)])


def _problems(rows=4, n=6):
    """Per row a convex quadratic plus a Rosenbrock-like coupling, and a start ``[rows, n]``."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(rows, n, n, generator=gen, dtype=F64)
    a = a @ a.transpose(1, 2) + 0.1 * torch.eye(n, dtype=F64)
    b = torch.randn(rows, n, generator=gen, dtype=F64)

    def loss_and_grad(x, row):
        x = x.detach().clone().requires_grad_(True)
        loss = 0.5 * x @ a[row] @ x - b[row] @ x + ((x[1:] - x[:-1] ** 2) ** 2).sum()
        return loss.detach(), torch.autograd.grad(loss, x)[0]

    def evaluate(trial, wanted):
        pairs = [loss_and_grad(point, row) for point, row in zip(trial, wanted)]
        return torch.stack([loss for loss, _ in pairs]), torch.stack([grad for _, grad in pairs])

    return loss_and_grad, evaluate, torch.randn(rows, n, generator=gen, dtype=F64)


def _alone(loss_and_grad, x0, row, steps, **options):
    """Row ``row`` of the problems as one problem: its parameters and LBFGS after ``steps`` steps."""
    point = x0[row].clone()
    optimizer = LBFGS([point], **options)
    for _ in range(steps):
        optimizer.step(lambda: loss_and_grad(point, row))
    return point, optimizer


def test_fleet_rows_take_the_iterates_of_each_problem_alone():
    """Bitwise: the rows share evaluations only, and each evaluation computes only the rows that
    want a point. Rows 1 and 3 sit out the third step."""
    loss_and_grad, evaluate, x0 = _problems()
    options = dict(tolerance_grad=1e-32, tolerance_change=1e-32, history_size=3)
    fleet = FleetLBFGS(4, LBFGSOptions(**options))
    x = x0.clone()
    asked = []

    def recorded(trial, rows):
        asked.append(rows)
        return evaluate(trial, rows)

    for active in ([0, 1, 2, 3], [0, 1, 2, 3], [0, 2]):
        x = fleet.step(x, recorded, active)
    assert any(len(rows) < 4 for rows in asked) and all(rows == sorted(rows) for rows in asked)
    for row in range(4):
        point, alone = _alone(loss_and_grad, x0, row, 3 if row in (0, 2) else 2, **options)
        assert torch.equal(x[row], point) and fleet.loss[row] == alone.last_loss


def test_fleet_skips_a_step_s_first_evaluation_at_the_parameters_it_returned():
    loss_and_grad, evaluate, x0 = _problems(rows=1)
    calls = []

    def counted(trial, rows):
        calls.append(trial)
        return evaluate(trial, rows)

    fleet = FleetLBFGS(1, LBFGSOptions(max_iter=5))
    x = fleet.step(x0, counted, [0])
    x = fleet.step(x, counted, [0])  # starts where the last step's line search evaluated
    fleet.step(x.clone(), counted, [0])  # another tensor: evaluated afresh
    evaluations = [_alone(loss_and_grad, x0, 0, steps, max_iter=5)[1].evaluations for steps in (1, 2, 3)]
    assert len(calls) == evaluations[2] - 1 and evaluations[1] - evaluations[0] > 1
