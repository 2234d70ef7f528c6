"""Optimal daily allocation of contact options under capacity and budgets.

Each account gets at most one option ``k = channel * S + slot_index`` (or no contact,
``-1``).  Option ``k`` uses one unit of resource ``resource_of[k]`` (an agent
pool-hour, a channel's daily budget; ``-1`` = unlimited).  Maximising the total value
of chosen options subject to per-resource capacities is a transportation problem
(accounts → resources); :func:`allocate` solves it exactly with OR-Tools min-cost
flow.  :func:`allocate_with_budget` adds a daily money budget over all channels, a
side constraint the flow structure cannot carry, by Lagrangian relaxation.

Extensions to the ``SCHEMAS.md`` contract (both optional, both keyword-compatible):

* ``resource_of`` may be int ``[G, K]`` together with ``group`` int ``[N]``: the
  resource an option uses depends on the account's group.  Typical groups are time
  zones (agent pool-hours are counted in the centre's zone, so the local 09:00 call
  of a Pacific account uses another pool-hour than a Eastern one; this is
  :attr:`collsim.plan.Resources.resource_by_zone` with ``group = timezone``).
* **Caps per region** (e.g. field visits per region and day) are extra resources:
  give each region its own resource id for the field-visit options, make
  ``group`` the (zone, region) pair encoded as one integer (``zone * n_regions +
  region``) and build ``resource_of[G, K]`` so that row ``g`` maps field-visit
  options to the region's resource and every other option as for its zone.  Any
  cap that is "at most c_r units of option set O_r among accounts of set A_r", with
  the sets nested in a group structure such that each (account, option) uses at
  most one capped resource, fits the same way.  Caps that overlap (one option using
  two capped resources, like a money budget) do not fit the transportation
  structure; the money budget is handled by :func:`allocate_with_budget`.

Method of :func:`allocate` (all steps exact):

1. *Reduce.*  Per account, only the best allowed option with positive value per
   resource matters, and the single best over all unlimited options ("base").  This
   is a numpy argmax per (group, resource) column block, in row chunks.
2. *Incremental values.*  An account always gets at least its base; a resource
   option is worth only its excess over the base.  Accounts with no positive excess
   are decided without the flow.
3. *Non-binding resources.*  If the number of accounts with a positive excess on
   resource r is ≤ its capacity, r can never bind: it is merged into the base
   (treated as unlimited) and step 2 is repeated until no resource is dropped.
4. *Top-C pruning.*  In some optimal solution, resource r only serves accounts
   among its ``cap_r + Σ_{r'≠r} min(cap_r', demand_r')`` best arcs (if it served
   another, a better-ranked account is idle and can take its place); other arcs
   are dropped.
5. *Flow.*  Accounts with arcs left → resources → sink, plus a source → sink bypass,
   with costs ``-round(excess * scale)`` solved by ``SimpleMinCostFlow``.  Above
   80,000 such accounts the flow is decomposed (:func:`_solve_transport`): prices
   from two 20,000-account samples fix every account whose best option cannot change
   within a price box, the rest go to the flow, and the combined assignment is
   certified optimal by a negative-cycle check on the residual graph compressed to
   resources (falling back to wider boxes, then the full flow, if it is not).

Ties and determinism: the output is a deterministic function of the input (no
randomness, single-threaded solver).  Among equally valued options of one account
that use the same resource (or both none), the lower option index wins; an account
never uses a scarce resource when an option of equal value needs none, nor a
binding resource when a non-binding one gives equal value.  Among equally good
accounts at a pruning threshold the lower account index is kept.  Ties the flow
itself has to break (several optimal assignments of equal total value) are broken by
the solver's deterministic order, not by a documented rule.

Precision: excesses are scaled to integers with ``scale = M / max_excess`` where
``M = min(2**53, 2**61 // (nodes + 1))`` (OR-Tools multiplies costs by ``nodes + 1``
internally; this keeps every intermediate in int64).  OR-Tools 9.15 still answered
``BAD_COST_RANGE`` on a dense 965-account × 16-resource flow at that scale; then ``M``
is divided by 2**12 and the flow solved again (up to three times).  The chosen solution's total
value is within ``n_flow_accounts / scale`` of the optimum, i.e. a relative loss
below ``n_flow_accounts / M`` of the largest excess (≤ 1e-12 for a 1M-account
instance with typical value spreads; the returned objective is always recomputed in
floating point from the original values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ortools.graph.python import min_cost_flow

from collsim.plan import Snapshot

__all__ = ["AllocationResult", "BudgetOptions", "allocate", "allocate_with_budget"]

_CHUNK = 1 << 15
"""Rows processed at once by the reductions (bounds temporary memory)."""

_EXACT_LP_MAX_VARS = 200_000
"""``allocate_with_budget`` computes the exact LP bound up to this many variables."""


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class AllocationResult:
    """Result of :func:`allocate_with_budget`.

    Attributes:
        choice: int64 [N], chosen option or -1.
        objective: total value of the chosen options.
        lp_bound: an upper bound on the optimum: the LP relaxation's optimum when
            ``bound_method == "lp"`` (exact, HiGHS), the best Lagrangian dual value
            ``min_λ flow(λ) + λ·budget`` found when ``"lagrangian"`` (≥ the LP
            optimum, equal in the limit since the flow polytope is integral), or the
            unbudgeted optimum when ``"unbudgeted"`` (the budget does not bind).
        gap: ``(lp_bound - objective) / max(|lp_bound|, 1e-12)``, clipped at 0.
        price: the final Lagrange multiplier λ of the budget (value per money unit).
        iterations: number of flow solves.
        spend: money cost of the chosen options.
        bound_method: ``"lp"``, ``"lagrangian"`` or ``"unbudgeted"``.
    """

    choice: np.ndarray
    objective: float
    lp_bound: float
    gap: float
    price: float
    iterations: int
    spend: float = 0.0
    bound_method: str = "lp"


@dataclass(frozen=True, eq=False)
class BudgetOptions:
    """The money budget of :func:`allocate_with_budget` and how its search runs.

    Attributes:
        budget: the day's money budget (≥ 0); ``inf`` means no budget.
        group: int [N], as for :func:`allocate` (with a 2-D ``resource_of``).
        tol: target relative gap of the Lagrangian search.
        max_iter: maximum number of flow solves.
        exact_bound: compute ``lp_bound`` exactly with HiGHS (True), use the best
            Lagrangian dual value (False), or decide by size (None: exact up to
            200,000 allowed positive options).
    """

    budget: float
    group: np.ndarray | None = None
    tol: float = 1e-4
    max_iter: int = 40
    exact_bound: bool | None = None


# ----------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class _Problem:
    """Validated inputs; ``res`` is always [G, K] and ``group`` always [N]."""

    value: np.ndarray
    mask: np.ndarray
    res: np.ndarray
    group: np.ndarray
    capacity: np.ndarray

    @property
    def n(self) -> int:
        return int(self.value.shape[0])

    @property
    def k(self) -> int:
        return int(self.value.shape[1])

    @property
    def r(self) -> int:
        return int(self.capacity.shape[0])

    def resource_of_choice(self, choice: np.ndarray) -> np.ndarray:
        """Return the resource used by each account's choice (-1: none or unlimited)."""
        safe = np.maximum(choice, 0)
        return np.where(choice >= 0, self.res[self.group, safe], -1)


def _validate(
    value: np.ndarray,
    mask: np.ndarray,
    resource_of: np.ndarray,
    capacity: np.ndarray,
    group: np.ndarray | None,
) -> _Problem:
    """Check shapes, dtypes and ranges; raise ValueError naming the bad argument."""
    value = np.asarray(value)
    mask = np.asarray(mask)
    resource_of = np.asarray(resource_of)
    capacity = np.asarray(capacity)
    if value.ndim != 2:
        raise ValueError(f"value must be 2-D [N, K]; got shape {value.shape}")
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise ValueError(f"value must be a real numeric array; got dtype {value.dtype}")
    n, k = value.shape
    if mask.shape != (n, k):
        raise ValueError(f"mask must have the shape of value {(n, k)}; got {mask.shape}")
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be bool; got dtype {mask.dtype}")
    if capacity.ndim != 1:
        raise ValueError(f"capacity must be 1-D [R]; got shape {capacity.shape}")
    if capacity.size and not (
        np.issubdtype(capacity.dtype, np.integer)
        or (
            np.issubdtype(capacity.dtype, np.floating)
            and np.all(np.isfinite(capacity))
            and np.all(capacity == np.round(capacity))
        )
    ):
        raise ValueError(f"capacity must hold integers; got dtype {capacity.dtype}")
    capacity = capacity.astype(np.int64)
    if np.any(capacity < 0):
        bad = int(np.flatnonzero(capacity < 0)[0])
        raise ValueError(f"capacity must be >= 0; capacity[{bad}] = {capacity[bad]}")
    n_res = int(capacity.shape[0])
    if resource_of.size and not np.issubdtype(resource_of.dtype, np.integer):
        raise ValueError(f"resource_of must be integer; got dtype {resource_of.dtype}")
    if resource_of.ndim == 1:
        if resource_of.shape != (k,):
            raise ValueError(f"resource_of must be [K={k}] or [G, K={k}]; got {resource_of.shape}")
        if group is not None:
            raise ValueError("group is only used with a 2-D resource_of [G, K]")
        res = resource_of.reshape(1, k).astype(np.int64)
        grp = np.zeros(n, dtype=np.int64)
    elif resource_of.ndim == 2:
        if resource_of.shape[1] != k or resource_of.shape[0] < 1:
            raise ValueError(f"resource_of must be [G>=1, K={k}]; got {resource_of.shape}")
        if group is None:
            raise ValueError("a 2-D resource_of [G, K] needs group int [N]")
        grp = np.asarray(group)
        if grp.shape != (n,):
            raise ValueError(f"group must be [N={n}]; got shape {grp.shape}")
        if grp.size and not np.issubdtype(grp.dtype, np.integer):
            raise ValueError(f"group must be integer; got dtype {grp.dtype}")
        grp = grp.astype(np.int64)
        n_groups = resource_of.shape[0]
        if grp.size and (grp.min() < 0 or grp.max() >= n_groups):
            bad = int(np.flatnonzero((grp < 0) | (grp >= n_groups))[0])
            raise ValueError(f"group[{bad}] = {grp[bad]} is outside [0, {n_groups})")
        res = resource_of.astype(np.int64)
    else:
        raise ValueError(f"resource_of must be 1-D [K] or 2-D [G, K]; got {resource_of.shape}")
    if res.size and (res.min() < -1 or res.max() >= n_res):
        bad = np.argwhere((res < -1) | (res >= n_res))[0]
        where = f"[{bad[1]}]" if resource_of.ndim == 1 else f"[{bad[0]}, {bad[1]}]"
        raise ValueError(f"resource_of{where} = {res[bad[0], bad[1]]} is outside [-1, R={n_res})")
    return _Problem(value=value, mask=mask, res=res, group=grp, capacity=capacity)


def _check_finite_allowed(value: np.ndarray, mask: np.ndarray, row0: int) -> None:
    """Raise if an allowed (unmasked) entry of a value chunk is NaN or infinite."""
    bad = mask & ~np.isfinite(value)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"value has {int(bad.sum())}+ non-finite allowed entries, "
            f"first value[{row0 + i}, {j}] = {value[i, j]}"
        )


# ----------------------------------------------------------------------------- reduction

# A layout says, per group, which output column ("slot") each block of input columns
# reduces to: layout[g] = [(slot, cols), ...].
_Layout = list[list[tuple[int, np.ndarray]]]
_Source = Callable[[np.ndarray | slice], np.ndarray]


def _layout_by_key(keys: np.ndarray) -> _Layout:
    """Return per-group blocks of columns sharing a key; keys int [G, M], -1 = skip."""
    layout: _Layout = []
    for row in keys:
        blocks = []
        for key in np.unique(row):
            if key >= 0:
                blocks.append((int(key), np.flatnonzero(row == key)))
        layout.append(blocks)
    return layout


def _reduce(
    source: _Source, group: np.ndarray, layout: _Layout, n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Argmax per account over each block of columns.

    Args:
        source: returns the float64 scores of the given rows (-inf = not allowed).
        group: int [N] group of each account.
        layout: column blocks per group.
        n_out: number of output slots.

    Returns:
        (best [N, n_out] float64, -inf if none; arg [N, n_out] int32 column, -1 if none).
        Ties go to the lowest column.
    """
    n = int(group.shape[0])
    best = np.full((n, n_out), -np.inf)
    arg = np.full((n, n_out), -1, dtype=np.int32)
    if n == 0:
        return best, arg
    if len(layout) == 1:
        parts: list[tuple[int, np.ndarray | None]] = [(0, None)]
    else:
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(layout) + 1))
        parts = [
            (g, order[bounds[g] : bounds[g + 1]])
            for g in range(len(layout))
            if bounds[g + 1] > bounds[g]
        ]
    for g, rows in parts:
        size = n if rows is None else int(rows.shape[0])
        for lo in range(0, size, _CHUNK):
            hi = min(lo + _CHUNK, size)
            idx: np.ndarray | slice = slice(lo, hi) if rows is None else rows[lo:hi]
            w = source(idx)
            span = np.arange(hi - lo)
            for slot, cols in layout[g]:
                block = w[:, cols]
                a = np.argmax(block, axis=1)
                best[idx, slot] = block[span, a]
                arg[idx, slot] = np.where(block[span, a] > -np.inf, cols[a], -1)
    return best, arg


def _value_source(problem: _Problem) -> _Source:
    """Scores for :func:`_reduce`: allowed positive values, else -inf."""

    def source(idx: np.ndarray | slice) -> np.ndarray:
        v = np.asarray(problem.value[idx], dtype=np.float64)
        m = problem.mask[idx]
        _check_finite_allowed(v, m, idx.start if isinstance(idx, slice) else 0)
        return np.where(m & (v > 0), v, -np.inf)

    return source


# ----------------------------------------------------------------------------- exact flow


def _solve_reduced(
    base_val: np.ndarray,
    base_opt: np.ndarray,
    best_val: np.ndarray,
    best_opt: np.ndarray,
    capacity: np.ndarray,
    price_hint: np.ndarray | None = None,
    want_prices: bool = False,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Solve the reduced transportation problem exactly.

    Args:
        base_val: float [N], value of the best unlimited option (-inf if none).
        base_opt: int [N], that option (-1 if none).
        best_val: float [N, R], value of the best option per resource (-inf if none).
        best_opt: int [N, R], that option (-1 if none).
        capacity: int64 [R].
        price_hint: float [R], guessed resource prices (NaN: unknown), e.g. from a
            similar problem; only speeds up large problems.
        want_prices: also compute the prices of small problems (solved by one flow).

    Returns:
        (choice, slack, prices): int64 [N] chosen option or -1; a bound on the value
        lost to integer rounding of the costs (the optimum is ≤ the choice's value +
        slack); float [R] resource prices when known (else NaN).
    """
    # Data: every account has at least its base (no contact = 0).
    n = int(base_val.shape[0])
    has_base = base_val > 0
    base = np.where(has_base, base_val, 0.0)
    choice = np.where(has_base, base_opt, -1).astype(np.int64)
    active = np.flatnonzero(capacity > 0)

    # Drop non-binding resources until a fixed point: they act as unlimited.
    while active.size:
        excess = best_val[:, active] - base[:, None]
        demand = np.count_nonzero(excess > 0, axis=0)
        free = demand <= capacity[active]
        if not free.any():
            break
        cols = active[free]
        cand = best_val[:, cols]
        j = np.argmax(cand, axis=1)
        top = cand[np.arange(n), j]
        better = top > base
        base = np.where(better, top, base)
        choice = np.where(better, best_opt[np.arange(n), cols[j]], choice)
        active = active[~free]
    prices = np.full(capacity.shape[0], np.nan)
    if active.size == 0:
        return choice, 0.0, prices

    # Variables: arcs (account, binding resource) with positive excess.
    excess = best_val[:, active] - base[:, None]
    arc = excess > 0
    demand = np.count_nonzero(arc, axis=0)
    cap = np.minimum(capacity[active], demand)
    total = int(cap.sum())
    for a in range(active.size):  # top-C pruning, one binding resource at a time
        n_keep = int(capacity[active[a]]) + total - int(cap[a])
        if demand[a] <= n_keep:
            continue
        rows = np.flatnonzero(arc[:, a])
        vals = excess[rows, a]
        threshold = -np.partition(-vals, n_keep - 1)[n_keep - 1]
        tied = rows[vals == threshold]
        n_tied = n_keep - int(np.count_nonzero(vals > threshold))
        arc[rows[vals < threshold], a] = False
        arc[tied[n_tied:], a] = False  # rows are ascending: lower index kept
    accounts = np.flatnonzero(arc.any(axis=1))
    if accounts.size == 0:
        return choice, 0.0, prices
    gain = np.where(arc[accounts], excess[accounts], -np.inf)

    # Solve the transportation problem on the accounts left.
    hint = None if price_hint is None else price_hint[active]
    assigned, slack, found = _solve_transport(gain, cap, hint, want_prices)
    used = assigned >= 0
    rows = accounts[used]
    choice[rows] = best_opt[rows, active[assigned[used]]]
    if found is not None:
        prices[active] = found
    return choice, slack, prices


_SAMPLE = 20_000
"""Accounts in each price-estimation sample of :func:`_solve_transport`."""
_COST_RANGE_RETRIES = 4
"""Cost scales tried (each 2**12 smaller) when OR-Tools answers ``BAD_COST_RANGE``."""


def _solve_transport(
    gain: np.ndarray,
    cap: np.ndarray,
    price_hint: np.ndarray | None = None,
    want_prices: bool = False,
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """Exact transportation problem max Σ gain[n, a(n)] s.t. per-column use ≤ cap.

    Small problems go straight to the flow.  Large ones are decomposed with prices:

    1. Solve a strided sample of ``_SAMPLE`` accounts with proportionally scaled
       capacities and read its resource prices off the optimal flow (shortest-path
       potentials of the residual graph, :func:`_residual_check`).
    2. At those prices every account has a best alternative (a resource or none) and
       a margin over its second best.  Accounts with a margin above ε are fixed to
       their best; the others (ε chosen so that a few percent are left) are solved
       exactly by the flow with the capacities the fixed ones leave.
    3. The combined assignment is checked for optimality on the *whole* problem: it
       is optimal iff the residual graph has no negative cycle, which is checked on
       the graph compressed to resources (edge weight = the cheapest exchange of one
       account between two positions).  If the check fails, ε grows; after three
       failures the full flow is solved.  So the result is exact in every case.

    A ``price_hint`` (e.g. the prices of the previous Lagrangian iteration) replaces
    step 1.  ``want_prices`` reads the prices off small problems too (one residual
    check after the flow).

    Args:
        gain: float [m, A], value of each arc, -inf where there is none.
        cap: int [A], capacity of each column.
        price_hint: float [A] guessed prices (NaN entries: unknown).

    Returns:
        (assigned [m]: column or -1, rounding slack of the flows in value units,
        the optimal prices [A] if they were computed, else None).
    """
    m = gain.shape[0]
    if m <= 4 * _SAMPLE:
        assigned, slack = _flow(gain, np.isfinite(gain), cap)
        if not want_prices:
            return assigned, slack, None
        return assigned, slack, np.maximum(_residual_check(gain, assigned, cap)[1], 0.0)

    if price_hint is not None and np.all(np.isfinite(price_hint)):
        price = np.maximum(price_hint, 0.0)
        spread = 0.05 * price + 1e-9 * float(np.max(price, initial=0.0))
    else:  # prices from two interleaved strided samples with proportional capacities
        step = m // _SAMPLE
        prices = []
        for offset in (0, step // 2):
            sample = np.arange(offset, m, step)
            sample_cap = np.rint(cap * (sample.size / m)).astype(np.int64)
            sample_assigned, _ = _flow(gain[sample], np.isfinite(gain[sample]), sample_cap)
            prices.append(_residual_check(gain[sample], sample_assigned, sample_cap)[1])
        price = np.maximum(0.5 * (prices[0] + prices[1]), 0.0)
        spread = np.abs(prices[0] - prices[1]) + 0.02 * price

    for widen in (1.0, 1.0, 2.0, 8.0):
        # Box of prices [price - δ, price + δ]: an account is decided if its best
        # alternative (column A = none) stays best for every price in the box.
        delta = widen * spread
        adj = gain - price[None, :]
        best = np.where(np.max(adj, axis=1) > 0, np.argmax(adj, axis=1), cap.size)
        hi = np.concatenate([adj + delta[None, :], np.zeros((m, 1))], axis=1)
        rows = np.arange(m)
        sure = np.where(best < cap.size, adj[rows, np.minimum(best, cap.size - 1)], 0.0)
        sure = sure - np.append(delta, 0.0)[best]
        hi[rows, best] = -np.inf
        open_rows = sure <= np.max(hi, axis=1)
        del hi, adj
        fixed = ~open_rows & (best < cap.size)
        cap_left = cap - np.bincount(best[fixed], minlength=cap.size)
        for a in np.flatnonzero(cap_left < 0):  # prices too low: open the least sure
            on_a = np.flatnonzero(fixed & (best == a))
            n_open = min(on_a.size, 2 * int(-cap_left[a]) + 16)
            open_rows[on_a[np.argsort(sure[on_a], kind="stable")[:n_open]]] = True
        fixed = ~open_rows & (best < cap.size)
        cap_left = cap - np.bincount(best[fixed], minlength=cap.size)
        assigned = np.where(fixed, best, -1)
        rows = np.flatnonzero(open_rows)
        sub, slack = _flow(gain[rows], np.isfinite(gain[rows]), cap_left)
        assigned[rows] = sub
        optimal, found = _residual_check(gain, assigned, cap)
        if optimal:
            return assigned, slack, np.maximum(found, 0.0)
        # Not optimal: the open accounts' own prices are a sharper estimate.
        sub_price = np.maximum(_residual_check(gain[rows], sub, cap_left)[1], 0.0)
        spread = np.abs(sub_price - price) + 0.02 * sub_price
        price = sub_price
    return (*_flow(gain, np.isfinite(gain), cap), None)


def _residual_check(
    gain: np.ndarray, assigned: np.ndarray, cap: np.ndarray
) -> tuple[bool, np.ndarray]:
    """Check an assignment for optimality and return resource prices.

    The residual graph of the flow is compressed to nodes 0..A-1 (resources),
    S = A (the pool of unassigned accounts) and T = A+1 (spare capacity).  Edge
    X → r costs the cheapest move of one account from position X to r
    (``value at X − gain[n, r]``), r → S the cheapest unassignment, r → T / T → r are
    free when r has spare / used capacity, S ↔ T free when someone is assigned /
    unassigned.  The assignment is optimal iff this graph has no negative cycle
    (up to a tolerance of 1e-12 of the largest gain per edge).

    Returns:
        (optimal, prices [A]): prices are ``d(T) − d(r)`` for shortest-path
        distances d; at an optimum every account's position is its best at them.
    """
    m, n_col = gain.shape
    s_node, t_node = n_col, n_col + 1
    n_nodes = n_col + 2
    pos = np.where(assigned >= 0, assigned, s_node)
    here = np.where(assigned >= 0, gain[np.arange(m), np.maximum(assigned, 0)], 0.0)
    weight = np.full((n_nodes, n_nodes), np.inf)
    move = here[:, None] - gain  # +inf where there is no arc
    move[np.arange(m), np.minimum(pos, n_col - 1)] = np.where(
        pos < n_col, np.inf, move[np.arange(m), np.minimum(pos, n_col - 1)]
    )
    order = np.argsort(pos, kind="stable")
    sorted_pos = pos[order]
    starts = np.flatnonzero(np.r_[True, sorted_pos[1:] != sorted_pos[:-1]])
    groups = sorted_pos[starts]
    weight[groups, :n_col] = np.minimum.reduceat(move[order], starts, axis=0)
    out_of = groups < n_col
    weight[groups[out_of], s_node] = np.minimum.reduceat(here[order], starts)[out_of]
    use = np.bincount(assigned[assigned >= 0], minlength=n_col)
    weight[np.flatnonzero(use < cap), t_node] = 0.0
    weight[t_node, np.flatnonzero(use > 0)] = 0.0
    if np.any(assigned >= 0):
        weight[s_node, t_node] = 0.0
    if np.any(assigned < 0):
        weight[t_node, s_node] = 0.0
    np.fill_diagonal(weight, np.inf)
    finite = np.isfinite(gain)
    tol = 1e-12 * float(np.max(np.abs(gain[finite]))) if finite.any() else 0.0
    weight += tol

    # Bellman-Ford from a virtual root joined to every node at cost 0.
    dist = np.zeros(n_nodes)
    optimal = False
    for _ in range(n_nodes + 1):
        new = np.minimum(dist, np.min(dist[:, None] + weight, axis=0))
        if np.array_equal(new, dist):
            optimal = True
            break
        dist = new
    return optimal, dist[t_node] - dist[:n_col]


def _flow(gain: np.ndarray, keep: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, float]:
    """Solve max Σ gain over arcs ``keep`` [m, A] with resource capacities ``cap`` [A].

    Returns:
        (assigned [m]: resource column or -1, rounding slack in value units).
    """
    n_acc, n_act = gain.shape
    acc_pos, res_pos = np.nonzero(keep)
    result = np.full(n_acc, -1, dtype=np.int64)
    if acc_pos.size == 0:
        return result, 0.0
    arc_gain = gain[acc_pos, res_pos]

    # Constraints as a network: source 0, sink 1, resources 2.., accounts 2+n_act..
    source, sink = 0, 1
    acc_node = (2 + n_act + np.arange(n_acc)).astype(np.int32)
    res_node = (2 + np.arange(n_act)).astype(np.int32)
    tails = np.concatenate(
        [np.zeros(n_acc, np.int32), acc_node[acc_pos], res_node, np.array([source], np.int32)]
    )
    heads = np.concatenate(
        [acc_node, res_node[res_pos], np.full(n_act, sink, np.int32), np.array([sink], np.int32)]
    )
    caps = np.concatenate(
        [np.ones(n_acc + acc_pos.size, np.int64), cap.astype(np.int64), np.array([n_acc])]
    )
    zeros = np.zeros(n_act + 1, np.int64)

    # Integer costs: the largest gain maps to M (see module docstring), or to M / 2**12,
    # M / 2**24 ... while OR-Tools finds the costs out of its range.
    n_nodes = 2 + n_act + n_acc
    big = min(2.0**53, float(2**61 // (n_nodes + 1)))
    for _ in range(_COST_RANGE_RETRIES):
        scale = big / max(float(arc_gain.max()), 1e-300)
        cost = -np.rint(arc_gain * scale).astype(np.int64)
        smcf = min_cost_flow.SimpleMinCostFlow()
        costs = np.concatenate([np.zeros(n_acc, np.int64), cost, zeros])
        arcs = smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
        supplies = np.array([n_acc, -n_acc], np.int64)
        smcf.set_nodes_supplies(np.array([source, sink], np.int32), supplies)
        status = smcf.solve()  # minimise the sum of -gain * scale
        if status != smcf.BAD_COST_RANGE:
            break
        big /= 2.0**12
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed with status {status}")

    # Read the solution: account → resource arcs that carry flow.
    flow = np.asarray(smcf.flows(np.asarray(arcs)[n_acc : n_acc + acc_pos.size]))
    used = flow > 0
    result[acc_pos[used]] = res_pos[used]
    return result, n_acc / scale


def _split_unlimited(
    best: np.ndarray, arg: np.ndarray, n_res: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split reduced columns [N, R+1] into (base_val, base_opt, best_val, best_opt)."""
    return best[:, n_res], arg[:, n_res], best[:, :n_res], arg[:, :n_res]


# ----------------------------------------------------------------------------- allocate


def allocate(
    value: np.ndarray,
    mask: np.ndarray,
    resource_of: np.ndarray,
    capacity: np.ndarray,
    *,
    group: np.ndarray | None = None,
) -> np.ndarray:
    """Choose at most one option per account, maximising total value under capacity.

    Args:
        value: float [N, K], net value of option k for account n over no contact.
            Entries where ``mask`` is False are ignored (they may be NaN); allowed
            entries must be finite.  Options with value ≤ 0 are never chosen.
        mask: bool [N, K], option allowed.
        resource_of: int [K] (or [G, K] with ``group``), the resource option k uses one
            unit of; -1 = none (unlimited).
        capacity: int [R], units of each resource (≥ 0).
        group: int [N] in [0, G), the row of a 2-D ``resource_of`` that applies to
            each account (e.g. its time zone).  Only with a 2-D ``resource_of``.

    Returns:
        int64 [N]: the chosen option of each account, or -1 for no contact.  The
        choice is optimal (see the module docstring for ties and precision).

    Raises:
        ValueError: wrong shape or dtype, non-finite allowed value, negative capacity,
            resource or group index out of range.
    """
    problem = _validate(value, mask, resource_of, capacity, group)
    n_res = problem.r
    if problem.n == 0 or problem.k == 0:
        return np.full(problem.n, -1, dtype=np.int64)
    keys = np.where(problem.res < 0, n_res, problem.res)  # unlimited → slot R
    best, arg = _reduce(_value_source(problem), problem.group, _layout_by_key(keys), n_res + 1)
    return _solve_reduced(*_split_unlimited(best, arg, n_res), problem.capacity)[0]


# ----------------------------------------------------------------------------- budget


@dataclass(frozen=True)
class _Classes:
    """Per account, the best option of each (resource, cost) class.

    Within a class the best option is the same for every price λ, so the Lagrangian
    loop works on J classes instead of K options.
    """

    val: np.ndarray  # float [N, J], -inf if none
    opt: np.ndarray  # int32 [N, J], -1 if none
    cost: np.ndarray  # float [N, J]
    layout: _Layout  # per group: (resource slot, class columns); unlimited = slot R
    option_cost: np.ndarray  # float [K] or [N, K], the money cost of each option

    def cost_of(self, rows: np.ndarray, options: np.ndarray) -> np.ndarray:
        """Money cost of option ``options[i]`` for account ``rows[i]``."""
        if self.option_cost.ndim == 1:
            return self.option_cost[options]
        return self.option_cost[rows, options]


def _build_classes(problem: _Problem, cost: np.ndarray) -> _Classes:
    """Group options by (resource, cost) per group and reduce values to classes."""
    n_res, k = problem.r, problem.k
    if cost.ndim == 2:  # per-account costs: every option is its own class
        res_of_class = np.where(problem.res < 0, n_res, problem.res)
        layout = _layout_by_key(res_of_class)
        opt = np.broadcast_to(np.arange(k, dtype=np.int32), (problem.n, k))
        src = _value_source(problem)
        val = np.empty((problem.n, k))
        for lo in range(0, problem.n, _CHUNK):
            val[lo : lo + _CHUNK] = src(slice(lo, lo + _CHUNK))
        opt = np.where(val > -np.inf, opt, -1).astype(np.int32)
        return _Classes(val=val, opt=opt, cost=cost, layout=layout, option_cost=cost)

    # Classes: unique (resource, cost) pairs of each group.
    n_groups = problem.res.shape[0]
    class_of = np.empty((n_groups, k), dtype=np.int64)
    class_res: list[np.ndarray] = []
    class_cost: list[np.ndarray] = []
    for g in range(n_groups):
        pairs = np.stack([problem.res[g].astype(np.float64), cost], axis=1)
        uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
        class_of[g] = inverse.ravel()
        class_res.append(uniq[:, 0].astype(np.int64))
        class_cost.append(uniq[:, 1])
    n_cls = max(c.size for c in class_res)
    cost_table = np.zeros((n_groups, n_cls))
    res_table = np.full((n_groups, n_cls), -1, dtype=np.int64)
    for g in range(n_groups):
        m = class_res[g].size
        cost_table[g, :m] = class_cost[g]
        res_table[g, :m] = np.where(class_res[g] < 0, n_res, class_res[g])
    val, opt = _reduce(_value_source(problem), problem.group, _layout_by_key(class_of), n_cls)
    return _Classes(
        val=val,
        opt=opt,
        cost=cost_table[problem.group],
        layout=_layout_by_key(res_table),
        option_cost=cost,
    )


@dataclass(frozen=True)
class _Slots:
    """The classes of :class:`_Classes` regrouped by resource slot, for all groups at once.

    ``val[s]``, ``cost[s]``, ``opt[s]`` are [N, m_s]: the class columns of slot ``s`` in
    the account's group, in ascending class order (so an argmax keeps the lowest class
    on ties, as :func:`_reduce` does), padded with -inf / 0 / -1.  Each Lagrangian step
    is then one vectorised max over m_s columns per slot (a plain subtraction when
    ``m_s == 1``) instead of a grouped, chunked argmax over all classes.
    """

    slot: list[int]
    val: list[np.ndarray]
    cost: list[np.ndarray]
    opt: list[np.ndarray]


def _build_slots(problem: _Problem, classes: _Classes) -> _Slots:
    """Regroup the class columns by resource slot (see :class:`_Slots`)."""
    per_slot: dict[int, dict[int, np.ndarray]] = {}
    for g, blocks in enumerate(classes.layout):
        for slot, cols in blocks:
            per_slot.setdefault(slot, {})[g] = cols
    out = _Slots(slot=[], val=[], cost=[], opt=[])
    for slot in sorted(per_slot):
        m = max(cols.size for cols in per_slot[slot].values())
        table = np.full((len(classes.layout), m), -1, dtype=np.int64)
        for g, cols in per_slot[slot].items():
            table[g, : cols.size] = cols
        cols = table[problem.group]
        pad = cols < 0
        cols[pad] = 0
        val = np.take_along_axis(classes.val, cols, axis=1)
        val[pad] = -np.inf
        cost = np.take_along_axis(classes.cost, cols, axis=1)
        cost[pad] = 0.0
        opt = np.take_along_axis(classes.opt, cols, axis=1)
        opt[pad] = -1
        out.slot.append(slot)
        out.val.append(val)
        out.cost.append(cost)
        out.opt.append(opt)
    return out


def _solve_priced(
    problem: _Problem,
    classes: _Classes,
    price: float,
    hint: np.ndarray | None = None,
    slots: _Slots | None = None,
    want_prices: bool = False,
) -> tuple[np.ndarray, float, float, float, np.ndarray]:
    """Exact allocation for value − price·cost.

    ``slots`` (from :func:`_build_slots`) is a faster layout of ``classes`` for
    repeated solves; the result is the same with or without it.

    Returns:
        (choice, priced flow value Σ(value − price·cost), spend, rounding slack,
        resource prices [R] or NaN, to hint the next solve).
    """
    if slots is None:

        def source(idx: np.ndarray | slice) -> np.ndarray:
            adj = classes.val[idx] - price * classes.cost[idx]
            return np.where(adj > 0, adj, -np.inf)

        best, arg = _reduce(source, problem.group, classes.layout, problem.r + 1)
        # arg holds class columns; map them to options.
        has = arg >= 0
        opt = np.full(arg.shape, -1, dtype=np.int32)
        opt[has] = classes.opt[np.nonzero(has)[0], arg[has]]
    else:
        n = problem.n
        best = np.full((n, problem.r + 1), -np.inf)
        opt = np.full((n, problem.r + 1), -1, dtype=np.int32)
        for slot, val, cost, opts in zip(slots.slot, slots.val, slots.cost, slots.opt, strict=True):
            if val.shape[1] == 1:
                adj = val[:, 0] - price * cost[:, 0]
                pos = adj > 0
                best[:, slot] = np.where(pos, adj, -np.inf)
                opt[:, slot] = np.where(pos, opts[:, 0], -1)
            else:
                adj = val - price * cost
                adj = np.where(adj > 0, adj, -np.inf)
                a = np.argmax(adj, axis=1)
                top = np.take_along_axis(adj, a[:, None], axis=1)[:, 0]
                best[:, slot] = top
                opt[:, slot] = np.where(
                    top > -np.inf, np.take_along_axis(opts, a[:, None], axis=1)[:, 0], -1
                )
    choice, slack, prices = _solve_reduced(
        *_split_unlimited(best, opt, problem.r), problem.capacity, hint, want_prices
    )
    value, spend = _totals(problem, classes, choice)
    return choice, value - price * spend, spend, slack, prices


def _totals(problem: _Problem, classes: _Classes, choice: np.ndarray) -> tuple[float, float]:
    """Return (total value, total money spend) of a choice."""
    chosen = np.flatnonzero(choice >= 0)
    value = float(np.asarray(problem.value[chosen, choice[chosen]], np.float64).sum())
    return value, float(_choice_cost(classes, choice).sum())


def _choice_cost(classes: _Classes, choice: np.ndarray) -> np.ndarray:
    """Money cost of each account's choice (0 for no contact)."""
    chosen = np.flatnonzero(choice >= 0)
    out = np.zeros(choice.shape[0])
    out[chosen] = classes.cost_of(chosen, choice[chosen])
    return out


def _repair(
    problem: _Problem,
    classes: _Classes,
    choice: np.ndarray,
    budget: float,
    max_rounds: int = 50,
) -> np.ndarray:
    """Greedily upgrade choices by value gained per money unit while feasible.

    Each round takes every account's best feasible upgrade (a class whose best option
    beats its current value, with capacity left on its resource unless it is the
    resource the account already uses), sorts them by Δvalue/Δcost (free upgrades
    first; ties: larger Δvalue, then lower account index) and accepts, per resource,
    no more than its remaining capacity and, overall, the longest prefix that keeps
    the spend within the budget.  Rounds repeat until nothing changes.
    """
    # Data: the resource of each (account, class), fixed across rounds.
    n, n_res = problem.n, problem.r
    table = np.full((len(classes.layout), classes.val.shape[1]), -1, dtype=np.int32)
    for g, blocks in enumerate(classes.layout):
        for slot, cols in blocks:
            table[g, cols] = slot if slot < n_res else -1
    choice = choice.copy()
    # Accounts with a class better than their choice (the set only shrinks, since an
    # upgrade only raises an account's value) and their rows of the class data.
    live, live_group = np.arange(n), problem.group
    live_val, live_cost, res_cls = classes.val, classes.cost, table[live_group]
    live_top = np.max(live_val, axis=1, initial=-np.inf)
    for _ in range(max_rounds):
        # Current state.
        chosen = np.flatnonzero(choice >= 0)
        cur_val = np.zeros(n)
        cur_val[chosen] = problem.value[chosen, choice[chosen]]
        cur_cost = _choice_cost(classes, choice)
        cur_res = problem.resource_of_choice(choice)
        left_cap = problem.capacity - np.bincount(cur_res[cur_res >= 0], minlength=n_res)
        left_budget = budget - float(cur_cost.sum())
        # Candidate upgrades per (live account, class).
        better = live_top > cur_val[live]
        if not better.all():
            live, live_group, live_top = live[better], live_group[better], live_top[better]
            live_val, live_cost, res_cls = live_val[better], live_cost[better], res_cls[better]
        d_val = live_val - cur_val[live, None]
        d_cost = live_cost - cur_cost[live, None]
        ok = (d_val > 0) & (d_cost <= left_budget)
        # Resource open: unlimited or spare capacity (per group and class), or the
        # account's own resource.
        open_cls = (table < 0) | (np.append(left_cap, 0)[table] > 0)
        ok &= open_cls[live_group] | (res_cls == cur_res[live, None])
        if not ok.any():
            break
        # Value per money unit; free upgrades first.
        costs = d_cost > 0
        ratio = np.full(ok.shape, -np.inf)
        np.divide(d_val, d_cost, out=ratio, where=ok & costs)
        ratio[ok & ~costs] = np.inf
        best_j = np.argmax(ratio, axis=1)
        pos = np.flatnonzero(ok[np.arange(live.size), best_j])
        j = best_j[pos]
        cand = live[pos]
        order = np.lexsort((cand, -d_val[pos, j], -ratio[pos, j]))
        cand, j, pos = cand[order], j[order], pos[order]
        c_dcost, c_res = d_cost[pos, j], res_cls[pos, j]
        # Capacity: rank of each candidate among those moving into the same resource.
        moves = (c_res >= 0) & (c_res != cur_res[cand])
        key = np.where(moves, c_res, n_res)
        srt = np.argsort(key, kind="stable")
        rank = np.empty(cand.size, dtype=np.int64)
        rank[srt] = np.arange(cand.size) - np.searchsorted(key[srt], key[srt])
        fits = ~moves | (rank < np.append(left_cap, 0)[np.where(c_res < 0, n_res, c_res)])
        cand, j, c_dcost = cand[fits], j[fits], c_dcost[fits]
        # Budget: the longest prefix whose running spend stays within what is left.
        over = np.flatnonzero(np.cumsum(c_dcost) > left_budget)
        take = int(over[0]) if over.size else int(cand.size)
        if take == 0:
            break
        choice[cand[:take]] = classes.opt[cand[:take], j[:take]]
    return choice


def _lp_bound(problem: _Problem, cost: np.ndarray, budget: float) -> float:
    """Exact LP relaxation optimum with HiGHS (x[n, k] over allowed positive options)."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    # Data and variables: one per allowed positive option.
    v = np.where(problem.mask, np.asarray(problem.value, np.float64), 0.0)
    acc, opt = np.nonzero(problem.mask & (v > 0))
    n_var = int(acc.size)
    if n_var == 0:
        return 0.0
    res = problem.res[problem.group[acc], opt]
    c = cost[opt] if cost.ndim == 1 else cost[acc, opt]
    # Constraints: one per account, one per resource, the budget.
    scarce = res >= 0
    var = np.arange(n_var)
    a_rows = np.concatenate([acc, problem.n + res[scarce], np.full(n_var, problem.n + problem.r)])
    a_cols = np.concatenate([var, var[scarce], var])
    a_vals = np.concatenate([np.ones(n_var + int(scarce.sum())), c])
    a_ub = sp.csr_array((a_vals, (a_rows, a_cols)), shape=(problem.n + problem.r + 1, n_var))
    b_ub = np.concatenate([np.ones(problem.n), problem.capacity.astype(float), [budget]])
    # Objective and solve: maximise value.
    out = linprog(-v[acc, opt], A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")
    if out.status != 0:
        raise RuntimeError(f"LP bound failed: {out.message}")
    return float(-out.fun)


def _count_positive(problem: _Problem) -> int:
    """Number of allowed options with positive value (the LP's variables)."""
    total = 0
    for lo in range(0, problem.n, _CHUNK):
        m = problem.mask[lo : lo + _CHUNK]
        v = np.where(m, np.asarray(problem.value[lo : lo + _CHUNK], np.float64), 0.0)
        total += int(np.count_nonzero(m & (v > 0)))
    return total


_BUDGET_SAMPLE = 50_000
"""Accounts in the sample that estimates the budget's price λ (at most a quarter of
the instance; instances under ``4 * _BUDGET_SAMPLE_MIN`` accounts are not sampled)."""

_BUDGET_SAMPLE_MIN = 10_000
"""Smallest sample worth solving before the full instance."""

_BUDGET_PROBE = 0.02
"""Relative distance of the first full solves above and below the sampled λ."""


def _sample_price(
    problem: _Problem, classes: _Classes, budget: float, lam_max: float
) -> tuple[float | None, np.ndarray | None]:
    """Estimate the budget's price λ on a strided sample of accounts.

    The sample gets proportionally scaled capacities and budget; λ is located by
    safeguarded regula falsi on the sample's spend(λ) to 0.1%.

    Returns:
        (λ estimate, resource prices [R] at it to hint the first full solve, NaN
        where unknown); (None, None) for instances too small to sample, (0.0, None)
        if the budget does not bind on the sample.  The estimates only position and
        speed up the full solves; they never affect exactness.
    """
    n = problem.n
    size = min(_BUDGET_SAMPLE, n // 4)
    if size < min(_BUDGET_SAMPLE_MIN, _BUDGET_SAMPLE) or lam_max <= 0:
        return None, None
    rows = np.arange(0, n, n // size)
    share = rows.size / n
    sub = _Problem(
        value=problem.value[rows],
        mask=problem.mask[rows],
        res=problem.res,
        group=problem.group[rows],
        capacity=np.rint(problem.capacity * share).astype(np.int64),
    )
    sub_classes = _Classes(
        val=classes.val[rows],
        opt=classes.opt[rows],
        cost=classes.cost[rows],
        layout=classes.layout,
        option_cost=classes.option_cost
        if classes.option_cost.ndim == 1
        else classes.option_cost[rows],
    )
    sub_slots = _build_slots(sub, sub_classes)
    sub_budget = budget * share

    def spend_at(lam: float) -> float:
        return _solve_priced(sub, sub_classes, lam, None, sub_slots)[2]

    lo, spend_lo = 0.0, spend_at(0.0)
    if spend_lo <= sub_budget:
        return 0.0, None
    hi, spend_hi = lam_max, spend_at(lam_max)
    streak = 0
    for _ in range(40):
        if hi - lo <= 1e-3 * hi:
            break
        lam = lo + (hi - lo) * (spend_lo - sub_budget) / (spend_lo - spend_hi)
        if abs(streak) >= 2 or not lo < lam < hi:
            lam = 0.5 * (lo + hi)
            streak = 0
        spend = spend_at(lam)
        if spend <= sub_budget:
            hi, spend_hi = lam, spend
            streak = streak + 1 if streak > 0 else 1
        else:
            lo, spend_lo = lam, spend
            streak = streak - 1 if streak < 0 else -1
    guess = 0.5 * (lo + hi)
    return guess, _solve_priced(sub, sub_classes, guess, None, sub_slots, want_prices=True)[4]


def allocate_with_budget(
    value: np.ndarray,
    mask: np.ndarray,
    resource_of: np.ndarray,
    capacity: np.ndarray,
    cost: np.ndarray,
    options: BudgetOptions,
) -> AllocationResult:
    """Allocate under capacities and a money budget over all channels.

    Method: Lagrangian relaxation of the budget.  For a price λ ≥ 0 the problem with
    values ``value − λ·cost`` is solved exactly by the flow of :func:`allocate`;
    spend falls as λ rises.  λ is bracketed between an over-budget price and a
    feasible one: from 40,000 accounts on, λ and the resource prices are first
    estimated on a strided sample (:func:`_sample_price`, ≤ 50,000 accounts) and the
    first full solves probe ±2% around that λ (widening if needed); smaller
    instances start from [0, λ_max].  The bracket is narrowed by safeguarded regula
    falsi (bisection when one side stalls); once it is within 5%, the feasible
    side's solution is repaired greedily (upgrades by value per money unit, see
    :func:`_repair`) to use the budget it left, and the search stops when the best
    repaired value is within ``tol`` of the best dual value or the bracket
    collapses.  Every full solve is exact, so the sample affects only the speed and
    which λ values are tried, never feasibility or the bound.  Each
    ``F(λ) + λ·budget`` (F = optimal priced flow value) bounds the LP relaxation from
    above; the flow polytope is integral, so the best of them tends to the LP optimum.

    A cap per region (e.g. field visits) is modelled as extra resources through a
    2-D ``resource_of`` and ``group``; see the module docstring.

    Args:
        value: float [N, K], as for :func:`allocate`.
        mask: bool [N, K], as for :func:`allocate`.
        resource_of: int [K] or [G, K], as for :func:`allocate`.
        capacity: int [R], as for :func:`allocate`.
        cost: float [K] or [N, K], money cost of each option (finite, ≥ 0 where allowed).
        options: the budget, ``group`` and the search settings (:class:`BudgetOptions`).

    Returns:
        AllocationResult with the choice (feasible for capacities and budget), its
        value, an upper bound and the gap.

    Raises:
        ValueError: as :func:`allocate`, plus a bad cost shape or dtype, a negative or
            non-finite allowed cost, or a negative/NaN budget.
    """
    # Data: validate.
    problem = _validate(value, mask, resource_of, capacity, options.group)
    tol, max_iter = options.tol, options.max_iter
    cost = np.asarray(cost)
    if cost.shape not in ((problem.k,), (problem.n, problem.k)):
        raise ValueError(
            f"cost must be [K={problem.k}] or [N={problem.n}, K={problem.k}]; got {cost.shape}"
        )
    if not (np.issubdtype(cost.dtype, np.floating) or np.issubdtype(cost.dtype, np.integer)):
        raise ValueError(f"cost must be a real numeric array; got dtype {cost.dtype}")
    cost = cost.astype(np.float64)
    if cost.ndim == 2:
        cost = np.where(problem.mask, cost, 0.0)
    if cost.size and not (np.all(np.isfinite(cost)) and cost.min() >= 0):
        raise ValueError("cost must be finite and >= 0 (for allowed options)")
    budget = float(options.budget)
    if np.isnan(budget) or budget < 0:
        raise ValueError(f"budget must be >= 0; got {budget}")
    if problem.n == 0 or problem.k == 0:
        return AllocationResult(
            np.full(problem.n, -1, np.int64), 0.0, 0.0, 0.0, 0.0, 0, 0.0, "unbudgeted"
        )
    classes = _build_classes(problem, cost)
    slots = _build_slots(problem, classes)
    # Above λ_max every costly option is worth ≤ 0, so the spend is 0.
    costly = (classes.cost > 0) & (classes.val > 0)
    lam_max = (
        float(np.max(classes.val[costly] / classes.cost[costly])) * (1 + 1e-9)
        if costly.any()
        else 0.0
    )

    # Bracket λ between an over-budget price (lo) and a feasible one (hi).  Large
    # instances first estimate λ (and the resource prices) on a sample and probe just
    # above and below it; otherwise (or if the sample says the budget does not bind)
    # the bracket is [0, λ_max].  λ = 0 is solved only when the budget may not bind:
    # if the unbudgeted optimum fits, it is optimal for the budget too.
    guess, hint = _sample_price(problem, classes, budget, lam_max)
    iterations, dual = 0, np.inf

    def solve(lam: float) -> tuple[np.ndarray, float, float, float]:
        """Exact priced solve at λ; updates the dual bound, the count and the hint."""
        nonlocal iterations, dual, hint
        choice, flow_value, spend, slack, found = _solve_priced(problem, classes, lam, hint, slots)
        hint = found if np.all(np.isfinite(found)) else hint
        iterations += 1
        dual = min(dual, flow_value + slack + lam * budget)
        return choice, flow_value, slack, spend

    if guess is None or guess <= 0:
        up, down = [lam_max], []
        choice, flow_value, slack, spend = solve(0.0)
        if spend <= budget:
            return AllocationResult(
                choice, flow_value, flow_value + slack, 0.0, 0.0, iterations, spend, "unbudgeted"
            )
        lam_lo, spend_lo = 0.0, spend
    else:
        width = _BUDGET_PROBE * guess
        up = [lam for lam in (guess + width, guess + 4 * width) if lam < lam_max] + [lam_max]
        down = [lam for lam in (guess - width, guess - 4 * width) if lam > 0] + [0.0]
        lam_lo, spend_lo = -1.0, np.inf
    lam_hi, spend_hi, choice_hi = -1.0, 0.0, np.empty(0, np.int64)
    for lam in up:  # up: the first feasible price is λ_hi, infeasible ones raise λ_lo
        choice, _, _, spend = solve(lam)
        if spend <= budget:
            lam_hi, spend_hi, choice_hi = lam, spend, choice
            break
        lam_lo, spend_lo = lam, spend
    if lam_lo < 0:
        for lam in down:  # down: the first infeasible price is λ_lo
            choice, flow_value, slack, spend = solve(lam)
            if spend > budget:
                lam_lo, spend_lo = lam, spend
                break
            if lam == 0.0:
                return AllocationResult(
                    choice,
                    flow_value,
                    flow_value + slack,
                    0.0,
                    0.0,
                    iterations,
                    spend,
                    "unbudgeted",
                )
            lam_hi, spend_hi, choice_hi = lam, spend, choice
    best_choice, best_value = choice_hi, _totals(problem, classes, choice_hi)[0]
    hi_repaired = False

    # Search λ: safeguarded regula falsi on spend(λ) = budget; once the bracket is
    # narrow, the feasible side's solution is repaired and the best one kept.
    streak = 0  # >0: feasible side moved repeatedly, <0: infeasible side
    while True:
        if dual - best_value <= tol * max(abs(dual), 1e-12):
            break
        if not hi_repaired and lam_hi - lam_lo <= 0.05 * lam_hi:
            repaired = _repair(problem, classes, choice_hi, budget)
            hi_repaired = True
            repaired_value = _totals(problem, classes, repaired)[0]
            if repaired_value > best_value:
                best_choice, best_value = repaired, repaired_value
            continue
        if iterations >= max_iter or lam_hi - lam_lo <= 1e-9 * lam_hi:
            break
        lam = lam_lo + (lam_hi - lam_lo) * (spend_lo - budget) / (spend_lo - spend_hi)
        if abs(streak) >= 2 or not lam_lo < lam < lam_hi:
            lam = 0.5 * (lam_lo + lam_hi)
            streak = 0
        choice, _, _, spend = solve(lam)
        if spend <= budget:
            lam_hi, spend_hi, choice_hi, hi_repaired = lam, spend, choice, False
            streak = streak + 1 if streak > 0 else 1
        else:
            lam_lo, spend_lo = lam, spend
            streak = streak - 1 if streak < 0 else -1

    # Repair: spend what λ_hi left on the best upgrades.
    if not hi_repaired:
        repaired = _repair(problem, classes, choice_hi, budget)
        if _totals(problem, classes, repaired)[0] > best_value:
            best_choice = repaired
    choice = best_choice
    objective, spend = _totals(problem, classes, choice)

    # Bound: the exact LP for small instances, else the best Lagrangian dual value.
    exact_bound = options.exact_bound
    if exact_bound is None:
        exact_bound = _count_positive(problem) <= _EXACT_LP_MAX_VARS
    if exact_bound:
        bound, method = _lp_bound(problem, cost, budget), "lp"
    else:
        bound, method = dual, "lagrangian"
    gap = max(0.0, (bound - objective) / max(abs(bound), 1e-12))
    return AllocationResult(choice, objective, bound, gap, lam_hi, iterations, spend, method)


def allocate_day(
    value: np.ndarray, mask: np.ndarray, snapshot: Snapshot
) -> tuple[np.ndarray, AllocationResult | None]:
    """Allocate a day's options exactly under the snapshot's resources.

    Capacity per resource and time zone (:func:`allocate` with ``group`` = zone); with
    a money budget, :func:`allocate_with_budget` over every channel's cost per attempt.

    Returns:
        (choice int64 [N] with -1 for no contact, the budgeted result or None).
    """
    res = snapshot.resources
    zone = np.asarray(snapshot.accounts.timezone, dtype=np.int64)
    if res.money_budget is None:
        return allocate(value, mask, res.resource_by_zone, res.capacity, group=zone), None
    cost = res.cost_per_attempt[snapshot.options.channel]
    budget = BudgetOptions(float(res.money_budget), group=zone)
    result = allocate_with_budget(value, mask, res.resource_by_zone, res.capacity, cost, budget)
    return result.choice, result
