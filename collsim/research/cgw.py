"""External validation: the single-account problem of Chehrazi, Glynn & Weber (2019).

N. Chehrazi, P. W. Glynn and T. A. Weber, "Dynamic credit-collections optimization",
*Management Science* 65(6), 2019, as set up in the public repository
``majkee15/credit_collections_rl`` (its ``dcc`` solver and ``CollectionsEnv``).

The model (time in the paper's unit, money in balance units):

* the repayment intensity ``λ_t`` decays between events toward ``λ∞`` at rate ``κ``:
  ``dλ = κ(λ∞ − λ) dt``;
* repayments arrive with intensity ``λ_t``; each pays a fraction ``r ~ U[r_min, 1]`` of
  the current balance ``w`` (``w → (1 − r)w``) and raises ``λ`` by ``δ10 + δ11·r``;
* the collector's control is an impulse: ``a ≥ 0`` units of effort raise ``λ`` by
  ``δ2·a`` at cost ``c·a`` (so ``ĉ = c/δ2`` per unit of intensity);
* the value of a policy from ``(λ, w)`` is ``E[∫ e^{−ρt} dCollected − ∫ e^{−ρt} c da]``.

Without control the value is affine-process closed form (``u(λ, w) = w·(1 − ρ q(λ))``
with ``q(λ) = ∫ e^{−ρt − λα(t) − κβ(t)} dt``, ``α' = −κα + E[1 − (1 − r)e^{−(δ10 + δ11 r)α}]``,
``β' = λ∞ α``).  :func:`exact_value` solves the optimal control problem on a
``(λ, w)`` grid band by band in ``w``: a repayment moves ``w`` down by at least the
factor ``1 − r_min``, so the expected post-repayment value ``J(λ, w)`` only needs rows
already solved; each row is then a one-dimensional problem in ``λ``: the optimal
policy sustains ``λ`` at ``λ*(w) = argmax_l [v_s(l) − ĉ l]`` (``v_s(l) = (l J(l) −
ĉκ(l − λ∞))/(l + ρ)``, raising ``λ`` to ``λ*`` by an impulse when below) and lets it
drift above, where ``v`` solves ``κ(λ − λ∞) v' = λJ − (λ + ρ)v``, integrated exactly
with the integrating factor ``μ(λ) = e^{(λ − λ∞)/κ}(λ − λ∞)^{(λ∞ + ρ)/κ}`` (the
paper's ``Q`` function).  :meth:`ExactSolution.impulse_gain` checks afterwards that no
impulse from any grid state improves on the computed value.

:func:`simulate` is the exact event simulation at the repository's decision step
``dt = 0.05`` (vectorised over episodes); :mod:`collsim.envs.cgw` wraps it as a
Gymnasium env and :mod:`collsim.research.cgw_rl` trains stable-baselines3 on it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import integrate, optimize

PUBLISHED = {
    0.06: {"optimal": 160.7, "no_action": 105.0},
    0.15: {"optimal": 145.94, "no_action": 59.07, "dqn": 143.21},
}
"""Reference values quoted for ``majkee15/credit_collections_rl`` (start ``(0.11, 200)``)."""

DECISION_STEP = 0.05
"""The repository environment's decision step ``dt`` (time units)."""

REPO_EFFORT_LEVELS = (0.0, 0.2, 1.0)
"""The repository's discrete effort bins (``DiscretizedActionWrapper`` in its experiments)."""


@dataclass(frozen=True)
class CGWParams:
    """Parameters of the single-account problem (defaults: the repository's ``Parameters``).

    Attributes:
        lambda0: starting intensity ``λ0`` (repayments per time unit).
        lambda_inf: long-run intensity ``λ∞``.
        kappa: decay rate ``κ`` of the intensity toward ``λ∞`` (per time unit).
        delta10: intensity jump per repayment, fixed part ``δ10``.
        delta11: intensity jump per repayment per unit of repaid fraction ``δ11``.
        delta2: intensity raised per unit of effort ``δ2``.
        cost_per_effort: cost ``c`` of one unit of effort (balance units).
        rho: discount rate ``ρ`` (per time unit).
        r_min: lower end of the repaid fraction ``r ~ U[r_min, 1]``.
        balance0: starting balance ``w0``.
    """

    lambda0: float = 0.11
    lambda_inf: float = 0.1
    kappa: float = 0.7
    delta10: float = 0.02
    delta11: float = 0.5
    delta2: float = 1.0
    cost_per_effort: float = 10.0
    rho: float = 0.06
    r_min: float = 0.1
    balance0: float = 200.0

    @property
    def cost_per_intensity(self) -> float:
        """``ĉ = c/δ2``: the cost of raising the intensity by one unit."""
        return self.cost_per_effort / self.delta2

    @property
    def mean_fraction(self) -> float:
        """Mean repaid fraction ``E[r]``."""
        return 0.5 * (self.r_min + 1.0)

    def with_rho(self, rho: float) -> CGWParams:
        """A copy with discount rate ``rho``."""
        return replace(self, rho=rho)


DEFAULT_PARAMS = CGWParams()
"""The repository's parameters (``ρ = 0.06``)."""


def fraction_nodes(params: CGWParams, n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and probability weights for ``r ~ U[r_min, 1]``.

    Args:
        params: the problem.
        n: number of nodes.

    Returns:
        ``(r, weights)`` with ``weights.sum() == 1``.
    """
    x, wts = np.polynomial.legendre.leggauss(n)
    half = 0.5 * (1.0 - params.r_min)
    return params.r_min + half * (x + 1.0), 0.5 * wts


REPO_NO_ACTION_HORIZON_KAPPAS = 20.0
"""The repository's ``AAV`` integrates ``q(λ)`` only up to ``t = 20/κ`` (201-point trapezoid)."""


@functools.lru_cache(maxsize=16)
def _alpha_beta(
    params: CGWParams, horizon: float | None = None, n_t: int = 8001
) -> tuple[np.ndarray, ...]:
    """``(t, α(t), β(t))`` of the autonomous account on ``[0, horizon]`` (default ``45/ρ``)."""
    r, wts = fraction_nodes(params, 32)
    jump = params.delta10 + params.delta11 * r

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        mean_kill = float(wts @ (1.0 - (1.0 - r) * np.exp(-jump * y[0])))
        return [-params.kappa * y[0] + mean_kill, params.lambda_inf * y[0]]

    t = np.linspace(0.0, 45.0 / params.rho if horizon is None else horizon, n_t)
    sol = integrate.solve_ivp(
        rhs, (0.0, t[-1]), [0.0, 0.0], t_eval=t, method="DOP853", rtol=1e-10, atol=1e-12
    )
    return t, sol.y[0], sol.y[1]


def no_action_fraction(
    params: CGWParams, lam: np.ndarray | float, horizon: float | None = None
) -> np.ndarray:
    """``1 − ρ q(λ)``: the share of the balance the uncontrolled account is worth.

    Args:
        params: the problem.
        lam: intensities (any shape; evaluated exactly by quadrature, O(size·8001) memory).
        horizon: integrate ``q`` only up to this time (``None``: to convergence, the
            true infinite-horizon value; ``20/κ`` reproduces the repository's ``AAV``).

    Returns:
        The no-action value per unit balance, shape of ``lam``.
    """
    t, alpha, beta = _alpha_beta(params, horizon)
    lam_arr = np.asarray(lam, dtype=float)
    flat = lam_arr.reshape(-1, 1)
    exponent = -params.rho * t - flat * alpha - params.kappa * beta
    q = integrate.simpson(np.exp(exponent), x=t, axis=1)
    return (1.0 - params.rho * q).reshape(lam_arr.shape)


@dataclass(frozen=True)
class NoActionValue:
    """The uncontrolled account's value ``u(λ, w) = w·(1 − ρq(λ))`` as a λ table.

    Attributes:
        params: the problem.
        lambdas: table abscissae (``λ∞`` to ``λ∞ + 60``).
        fractions: ``1 − ρq(λ)`` at ``lambdas``.
    """

    params: CGWParams
    lambdas: np.ndarray
    fractions: np.ndarray

    @classmethod
    def build(cls, params: CGWParams, n: int = 600) -> NoActionValue:
        """Tabulate ``1 − ρq(λ)`` on a grid dense near ``λ∞``."""
        lambdas = params.lambda_inf + 60.0 * np.linspace(0.0, 1.0, n) ** 2
        return cls(params, lambdas, no_action_fraction(params, lambdas))

    def __call__(self, lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
        """``u(λ, w)`` (λ beyond the table is clamped; the fraction is flat there)."""
        return np.asarray(balance) * np.interp(lam, self.lambdas, self.fractions)


def no_action_value(params: CGWParams, horizon: float | None = None) -> float:
    """The value of never acting from ``(λ0, w0)`` (closed form up to one quadrature).

    Args:
        params: the problem.
        horizon: see :func:`no_action_fraction`; ``repo_no_action_horizon(params)`` gives
            the repository's truncated figure (105.0 at ``ρ = 0.06``, against the true 102.1).
    """
    return float(params.balance0 * no_action_fraction(params, params.lambda0, horizon))


def repo_no_action_horizon(params: CGWParams) -> float:
    """The time ``20/κ`` at which the repository's ``AAV`` cuts the no-action integral."""
    return REPO_NO_ACTION_HORIZON_KAPPAS / params.kappa


@dataclass(frozen=True)
class Grid:
    """The solver's grid.

    Attributes:
        n_lambda: intensity points, ``λ∞`` to ``λ∞ + lambda_span`` (dense near ``λ∞``).
        n_balance: balance points, geometric from ``balance_min`` to ``w0``.
        n_fraction: Gauss–Legendre nodes for the repaid fraction.
        lambda_span: width of the intensity range.
        balance_min: lowest balance row; below it the account is valued without action.
    """

    n_lambda: int = 400
    n_balance: int = 160
    n_fraction: int = 24
    lambda_span: float = 12.0
    balance_min: float = 0.5


FAST_GRID = Grid(n_lambda=240, n_balance=90, n_fraction=16)
"""A coarser grid for tests (within 0.2 % of the default grid at the defaults)."""


@dataclass
class ExactSolution:
    """The optimal value on the grid and the sustain levels.

    Attributes:
        params: the problem.
        lambdas: intensity grid ``(n_λ,)``.
        balances: balance grid ``(n_w,)``, ascending, last = ``w0``.
        values: ``v(λ, w)`` as ``(n_w, n_λ)``.
        sustain_levels: ``λ*(w)`` per balance row (``λ∞``: never act).
        no_action: the uncontrolled value (used below the lowest balance row).
    """

    params: CGWParams
    lambdas: np.ndarray
    balances: np.ndarray
    values: np.ndarray
    sustain_levels: np.ndarray
    no_action: NoActionValue = field(repr=False)

    def value(self, lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
        """``v(λ, w)`` interpolated (linear in ``w`` between rows, linear in ``λ``).

        Below the lowest row the account is valued without action; above the top row
        (and beyond the intensity range) the grid is clamped.
        """
        lam = np.asarray(lam, dtype=float)
        balance = np.asarray(balance, dtype=float)
        row, frac_w = _bracket(self.balances, balance)
        col, frac_l = _bracket(self.lambdas, lam)
        v = self.values
        low = (1 - frac_l) * v[row, col] + frac_l * v[row, col + 1]
        high = (1 - frac_l) * v[row + 1, col] + frac_l * v[row + 1, col + 1]
        inside = (1 - frac_w) * low + frac_w * high
        return np.where(balance < self.balances[0], self.no_action(lam, balance), inside)

    def sustain_level(self, balance: np.ndarray) -> np.ndarray:
        """``λ*(w)`` interpolated in ``w`` (``λ∞`` below the lowest row)."""
        balance = np.asarray(balance, dtype=float)
        level = np.interp(balance, self.balances, self.sustain_levels)
        return np.where(balance < self.balances[0], self.params.lambda_inf, level)

    def top_up_effort(self, lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
        """The optimal impulse: effort raising ``λ`` to ``λ*(w)`` (0 in the hold region)."""
        gap = self.sustain_level(balance) - np.asarray(lam, dtype=float)
        return np.maximum(gap, 0.0) / self.params.delta2

    def greedy_level(
        self, lam: np.ndarray, balance: np.ndarray, levels: np.ndarray, tol: float = 1e-3
    ) -> np.ndarray:
        """Index of the effort level maximising ``v(λ + δ2 a, w) − c a`` (discrete actions).

        Below ``λ*`` the value rises with slope ``ĉ``, so every effort that stays below
        ``λ*`` ties; ties (within ``tol``) go to the largest effort, which gets there first.
        """
        lam = np.asarray(lam, dtype=float)[..., None]
        balance = np.asarray(balance, dtype=float)[..., None]
        score = self.value(lam + self.params.delta2 * levels, balance)
        score = score - self.params.cost_per_effort * levels
        near = score >= score.max(axis=-1, keepdims=True) - tol
        return levels.size - 1 - np.argmax(near[..., ::-1], axis=-1)

    def impulse_gain(self) -> float:
        """Largest gain of an impulse to a higher grid intensity (≈0 if optimal)."""
        c_hat = self.params.cost_per_intensity
        reach = self.values - c_hat * self.lambdas
        best_above = np.maximum.accumulate(reach[:, ::-1], axis=1)[:, ::-1]
        return float(np.max(best_above + c_hat * self.lambdas - self.values))

    def post_repayment(self, row: int, n_fraction: int = 24) -> np.ndarray:
        """``J(λ) = E[r w + v(λ + δ10 + δ11 r, (1 − r) w)]`` on the λ grid at balance ``row``."""
        p = self.params
        r, wts = fraction_nodes(p, n_fraction)
        lam_after = self.lambdas[:, None] + p.delta10 + p.delta11 * r
        w = self.balances[row]
        after = self.value(lam_after, np.broadcast_to((1.0 - r) * w, lam_after.shape))
        return (r * w + after) @ wts

    def waiting_gain(self) -> float:
        """Largest ``L v = κ(λ∞ − λ)∂λv + λ(J − v) − ρv`` where the policy acts (≤ 0 if optimal).

        Where the policy tops up (``λ < λ*``), not acting must not be better: the
        generator of the uncontrolled process applied to ``v`` must be non-positive.
        """
        p, worst = self.params, -np.inf
        for row in range(self.balances.size):
            act = self.lambdas < self.sustain_levels[row]
            if not act.any():
                continue
            v, lam = self.values[row], self.lambdas
            drift_gain = p.kappa * (p.lambda_inf - lam) * p.cost_per_intensity
            gen = drift_gain + lam * (self.post_repayment(row) - v) - p.rho * v
            worst = max(worst, float(gen[act].max()))
        return worst


def _bracket(grid: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left index and linear weight of ``x`` on an ascending ``grid`` (clamped)."""
    idx = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, grid.size - 2)
    frac = (x - grid[idx]) / (grid[idx + 1] - grid[idx])
    return idx, np.clip(frac, 0.0, 1.0)


def _log_integrating_factor(params: CGWParams, lambdas: np.ndarray) -> np.ndarray:
    """``log μ(λ) = (λ − λ∞)/κ + ((λ∞ + ρ)/κ) log(λ − λ∞)`` (−inf at ``λ∞``)."""
    gap = lambdas - params.lambda_inf
    with np.errstate(divide="ignore"):
        return gap / params.kappa + (params.lambda_inf + params.rho) / params.kappa * np.log(gap)


def _solve_row(
    params: CGWParams, lambdas: np.ndarray, post: np.ndarray, theta: np.ndarray
) -> tuple[np.ndarray, float]:
    """One balance row: sustain level and value given the post-repayment value ``J``.

    Args:
        params: the problem.
        lambdas: intensity grid.
        post: ``J(λ) = E[r w + v(λ + δ10 + δ11 r, (1 − r) w)]`` on ``lambdas``.
        theta: ``μ(λ_{i−1})/μ(λ_i)`` per grid cell.

    Returns:
        ``(v(λ), λ*)`` for the row.
    """
    c_hat, kappa, lam_inf = params.cost_per_intensity, params.kappa, params.lambda_inf
    sustained = (lambdas * post - c_hat * kappa * (lambdas - lam_inf)) / (lambdas + params.rho)
    k = int(np.argmax(sustained - c_hat * lambdas))
    values = np.empty_like(post)
    values[: k + 1] = sustained[k] - c_hat * (lambdas[k] - lambdas[: k + 1])
    drift_free = lambdas * post / (lambdas + params.rho)
    cell_mean = 0.5 * (drift_free[1:] + drift_free[:-1])
    for i in range(k + 1, lambdas.size):
        values[i] = theta[i - 1] * values[i - 1] + (1.0 - theta[i - 1]) * cell_mean[i - 1]
    return values, float(lambdas[k])


def solve(params: CGWParams, grid: Grid = Grid()) -> ExactSolution:
    """Solve the optimal collection problem on ``grid`` (see the module docstring).

    Args:
        params: the problem.
        grid: grid sizes.

    Returns:
        The value on the grid and the sustain levels.

    Raises:
        ValueError: the balance grid is too coarse for the band-by-band recursion.
    """
    lambdas = params.lambda_inf + grid.lambda_span * np.linspace(0.0, 1.0, grid.n_lambda) ** 2
    balances = np.geomspace(grid.balance_min, params.balance0, grid.n_balance)
    if balances[-2] < (1.0 - params.r_min) * balances[-1]:
        raise ValueError("balance grid too coarse: raise n_balance")
    sol = ExactSolution(
        params=params,
        lambdas=lambdas,
        balances=balances,
        values=np.zeros((balances.size, lambdas.size)),
        sustain_levels=np.full(balances.size, params.lambda_inf),
        no_action=NoActionValue.build(params),
    )
    theta = np.exp(-np.diff(_log_integrating_factor(params, lambdas)))
    for j in range(balances.size):
        post = sol.post_repayment(j, grid.n_fraction)
        sol.values[j], sol.sustain_levels[j] = _solve_row(params, lambdas, post, theta)
    return sol


@dataclass(frozen=True)
class ExactResult:
    """Exact values at the start state.

    Attributes:
        optimal: optimal value at ``(λ0, w0)``.
        no_action: value of never acting at ``(λ0, w0)``.
        sustain_level: ``λ*(w0)``.
        solution: the full grid solution.
    """

    optimal: float
    no_action: float
    sustain_level: float
    solution: ExactSolution = field(repr=False)


def exact_value(params: CGWParams = CGWParams(), grid: Grid = Grid()) -> ExactResult:
    """Optimal and no-action values at ``(λ0, w0)``.

    Args:
        params: the problem.
        grid: solver grid (:data:`FAST_GRID` for tests).

    Returns:
        The values and the solution they come from.

    Example:
        >>> res = exact_value(CGWParams(rho=0.06), FAST_GRID)
        >>> round(res.optimal), round(res.no_action)
        (161, 102)
    """
    sol = solve(params, grid)
    lam0, w0 = np.array(params.lambda0), np.array(params.balance0)
    return ExactResult(
        optimal=float(sol.value(lam0, w0)),
        no_action=no_action_value(params),
        sustain_level=float(sol.sustain_level(w0)),
        solution=sol,
    )


# ---------------------------------------------------------------------------
# Exact event simulation at a fixed decision step (vectorised over episodes)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SimConfig:
    """How an episode is simulated.

    Attributes:
        dt: decision step (the repository's 0.05).
        balance_stop: the episode ends when the balance falls below this (repository: 1).
        terminal_value: add the discounted no-action value of the remaining balance at the
            end (the exact continuation for small balances; the repository adds nothing).
        compensator_reward: reward the expected collection rate ``E[r]·w·λ`` integrated
            exactly between events instead of the realised repayments (same expectation;
            the repository's ``continuous`` reward shaping, done exactly).  Here it has
            *more* variance than the realised repayments (it ignores the drawn fractions),
            so it is off by default.
        max_time: episodes are cut at this time with the no-action value as terminal.
    """

    dt: float = DECISION_STEP
    balance_stop: float = 1.0
    terminal_value: bool = True
    compensator_reward: bool = False
    max_time: float = 200.0


DEFAULT_SIM = SimConfig()
"""The repository's step and stop balance, with the terminal value, realised rewards."""


@dataclass
class Batch:
    """State of a batch of episodes (arrays of equal length).

    Attributes:
        lam: intensities.
        balance: balances.
        time: elapsed times.
    """

    lam: np.ndarray
    balance: np.ndarray
    time: np.ndarray

    @classmethod
    def start(cls, params: CGWParams, n: int) -> Batch:
        """``n`` episodes at ``(λ0, w0)``, time 0."""
        return cls(np.full(n, params.lambda0), np.full(n, params.balance0), np.zeros(n))


def _intensity_integral(params: CGWParams, lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``∫_0^τ λ_s ds`` for intensity starting at ``lam`` without events."""
    decay = -np.expm1(-params.kappa * tau) / params.kappa
    return params.lambda_inf * tau + (lam - params.lambda_inf) * decay


def _event_time(params: CGWParams, lam: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``τ`` with ``∫_0^τ λ_s ds = target`` (concave increasing: Newton from 0 converges)."""

    def f(tau: np.ndarray) -> np.ndarray:
        return _intensity_integral(params, lam, tau) - target

    def fprime(tau: np.ndarray) -> np.ndarray:
        return params.lambda_inf + (lam - params.lambda_inf) * np.exp(-params.kappa * tau)

    return np.asarray(optimize.newton(f, np.zeros_like(lam), fprime=fprime, tol=1e-12))


def _expected_collection(params: CGWParams, batch: Batch, tau: np.ndarray) -> np.ndarray:
    """``E[r]·w·∫_t^{t+τ} e^{−ρs} λ_s ds`` over a stretch without events."""
    rho, kappa, lam_inf = params.rho, params.kappa, params.lambda_inf
    flat = lam_inf * -np.expm1(-rho * tau) / rho
    excess = (batch.lam - lam_inf) * -np.expm1(-(rho + kappa) * tau) / (rho + kappa)
    return params.mean_fraction * batch.balance * np.exp(-rho * batch.time) * (flat + excess)


def _drift(params: CGWParams, lam: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Intensity after ``τ`` without events."""
    return params.lambda_inf + (lam - params.lambda_inf) * np.exp(-params.kappa * tau)


def advance(
    params: CGWParams,
    batch: Batch,
    effort: np.ndarray,
    rng: np.random.Generator,
    cfg: SimConfig,
    no_action: NoActionValue,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``effort`` and simulate one decision step exactly, in place.

    Args:
        params: the problem.
        batch: episodes to advance (modified in place).
        effort: effort units per episode (≥ 0).
        rng: random stream.
        cfg: simulation settings.
        no_action: terminal valuation.

    Returns:
        ``(reward, ended)``: discounted reward of the step per episode (collections
        minus effort cost, plus the terminal value when the episode ends) and whether
        the episode ended (balance below the stop, or the time cap).
    """
    reward = -params.cost_per_effort * effort * np.exp(-params.rho * batch.time)
    batch.lam = batch.lam + params.delta2 * effort
    left = np.full(batch.lam.size, cfg.dt)
    ended = np.zeros(batch.lam.size, dtype=bool)
    live = np.ones(batch.lam.size, dtype=bool)
    while live.any():
        idx = np.flatnonzero(live)
        sub = Batch(batch.lam[idx], batch.balance[idx], batch.time[idx])
        draw = rng.exponential(size=idx.size)
        hit = _intensity_integral(params, sub.lam, left[idx]) >= draw
        tau = left[idx].copy()
        if hit.any():
            tau[hit] = _event_time(params, sub.lam[hit], draw[hit])
        fraction = np.where(hit, rng.uniform(params.r_min, 1.0, size=idx.size), 0.0)
        if cfg.compensator_reward:
            reward[idx] += _expected_collection(params, sub, tau)
        else:
            reward[idx] += fraction * sub.balance * np.exp(-params.rho * (sub.time + tau))
        lam = _drift(params, sub.lam, tau) + hit * (params.delta10 + params.delta11 * fraction)
        batch.lam[idx], batch.time[idx] = lam, sub.time + tau
        batch.balance[idx] = sub.balance * (1.0 - fraction)
        left[idx] -= tau
        stop = batch.balance[idx] < cfg.balance_stop
        ended[idx] |= stop
        live[idx] = hit & ~stop
    ended |= batch.time >= cfg.max_time - 1e-9
    if cfg.terminal_value and ended.any():
        tail = no_action(batch.lam[ended], batch.balance[ended])
        reward[ended] += np.exp(-params.rho * batch.time[ended]) * tail
    return reward, ended


Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``policy(λ, w) -> effort`` (arrays of the batch size)."""


@dataclass(frozen=True)
class MonteCarloResult:
    """A Monte Carlo estimate of a policy's value at ``(λ0, w0)``.

    Attributes:
        mean: average discounted return.
        half_width: 95 % confidence half-width (1.96 standard errors).
        n_episodes: episodes simulated.
        mean_steps: average decision steps per episode.
    """

    mean: float
    half_width: float
    n_episodes: int
    mean_steps: float


def simulate(
    params: CGWParams,
    policy: Policy,
    n_episodes: int,
    seed: np.random.SeedSequence | int,
    cfg: SimConfig = DEFAULT_SIM,
) -> MonteCarloResult:
    """Monte Carlo value of ``policy`` from ``(λ0, w0)`` (all episodes in lock step).

    Args:
        params: the problem.
        policy: effort per episode from ``(λ, w)``.
        n_episodes: number of episodes.
        seed: seed sequence (or integer) of the run.
        cfg: simulation settings.

    Returns:
        The mean return and its confidence half-width.
    """
    rng = np.random.default_rng(seed)
    no_action = NoActionValue.build(params)
    returns = np.zeros(n_episodes)
    steps = np.zeros(n_episodes)
    alive = np.arange(n_episodes)
    batch = Batch.start(params, n_episodes)
    while alive.size:
        effort = np.asarray(policy(batch.lam, batch.balance), dtype=float)
        reward, ended = advance(params, batch, effort, rng, cfg, no_action)
        returns[alive] += reward
        steps[alive] += 1
        keep = ~ended
        alive = alive[keep]
        batch = Batch(batch.lam[keep], batch.balance[keep], batch.time[keep])
    sem = returns.std(ddof=1) / np.sqrt(n_episodes)
    return MonteCarloResult(
        float(returns.mean()), float(1.96 * sem), n_episodes, float(steps.mean())
    )


def level_policy(
    levels: tuple[float, ...] | np.ndarray, choose: Callable[..., np.ndarray]
) -> Policy:
    """A policy choosing among discrete effort ``levels`` by index.

    Args:
        levels: effort per action index.
        choose: ``choose(λ, w) -> index`` per episode.

    Returns:
        The effort policy.
    """
    table = np.asarray(levels, dtype=float)

    def policy(lam: np.ndarray, balance: np.ndarray) -> np.ndarray:
        return table[np.asarray(choose(lam, balance), dtype=int)]

    return policy


def solver_policy(sol: ExactSolution, levels: tuple[float, ...] | None = None) -> Policy:
    """The solver's policy: exact top-up to ``λ*(w)``, or greedy over discrete ``levels``."""
    if levels is None:
        return sol.top_up_effort
    table = np.asarray(levels, dtype=float)
    return level_policy(table, lambda lam, w: sol.greedy_level(lam, w, table))


def no_action_policy(lam: np.ndarray, _balance: np.ndarray) -> np.ndarray:
    """Never act."""
    return np.zeros_like(lam)
