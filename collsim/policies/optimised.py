"""Model-based policies: greedy ranking and exact allocation of model values.

Both policies take a *value model*: any object with
``predict_value(snapshot) -> float [N, K]`` (the net value of option k for account n
over no contact; see :class:`collsim.policies.models.ValueModel`,
:class:`~collsim.policies.models.OnnxValueModel` and, for research upper bounds
only, :class:`~collsim.policies.models.oracle.OracleValue`).  Options that are
masked by the snapshot or have a value ≤ 0 are never chosen.

* :class:`GreedyScore` ranks each account's options by value and fills capacity
  greedily (:func:`collsim.policies.base.fill_capacity`): accounts in order of
  their best value, each taking its best option that still has capacity (only the
  ``candidates`` best options per account are considered, for memory).
* :class:`OptimisedAllocation` solves the day's allocation exactly
  (:func:`collsim.policies.allocation.allocate`, min-cost flow over agent pool-hours
  and channel budgets per time zone; with a money budget,
  :func:`~collsim.policies.allocation.allocate_with_budget`).  Its plan's total
  model value is therefore ≥ that of :class:`GreedyScore` with the same model.
* :class:`OraclePolicy` is :class:`OptimisedAllocation` over
  :class:`~collsim.policies.models.oracle.OracleValue`: it reads the simulation's
  latent state through :meth:`OraclePolicy.observe_latent` (research only).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import numpy as np

from collsim.plan import Plan, Snapshot
from collsim.policies.allocation import allocate_day
from collsim.policies.base import fill_capacity, redial_crowded
from collsim.vocab import CHANNELS, IS_TIMED, N_CHANNELS, Channel

_BANDS = np.array([0.0, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0])
_CHUNK = 1 << 16


class ValueFunction(Protocol):
    """Anything that values a snapshot's options."""

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        """float [N, K]: net value of each option over no contact."""
        ...


def _band_text(lo: float, hi: float | None) -> str:
    return f"{lo:g}+" if hi is None else f"{lo:g}-{hi:g}"


def _reasons(
    snapshot: Snapshot, option: np.ndarray, value: np.ndarray, prefix: str, had_value: np.ndarray
) -> tuple[list[str], np.ndarray]:
    """Reason texts per (option, value band); codes 0/1 for the two no-contact cases."""
    opts = snapshot.options
    reasons = [
        f"{prefix}: no allowed option with positive value",
        f"{prefix}: capacity used for higher-value accounts",
    ]
    texts = []
    n_bands = _BANDS.size
    for k in range(opts.n_options):
        c = int(opts.channel[k])
        when = f" {int(opts.hour[k]):02d}:00" if IS_TIMED[c] else ""
        for b in range(n_bands):
            hi = float(_BANDS[b + 1]) if b + 1 < n_bands else None
            label = _band_text(float(_BANDS[b]), hi)
            texts.append(f"{prefix}: value {label} ({CHANNELS[c]}{when})")
    reasons += texts
    band = np.clip(np.searchsorted(_BANDS, value, side="right") - 1, 0, n_bands - 1)
    code = np.where(
        option >= 0, 2 + np.maximum(option, 0) * n_bands + band, np.where(had_value, 1, 0)
    )
    return reasons, code.astype(np.int16)


def _chosen_value(value: np.ndarray, option: np.ndarray) -> np.ndarray:
    rows = np.flatnonzero(option >= 0)
    out = np.zeros(option.shape[0])
    out[rows] = value[rows, option[rows]]
    return out


def _positive_allowed(
    snapshot: Snapshot, value: np.ndarray, redial_headroom: int | None
) -> np.ndarray:
    """bool [N, K]: allowed and positive (chunked to bound temporaries).

    With ``redial_headroom``, agent calls are also dropped for accounts with at least
    that many telephone attempts on the previous six days (see the policies' doc).
    """
    if value.shape != (snapshot.n, snapshot.options.n_options):
        raise ValueError(
            f"value model returned shape {value.shape}, expected "
            f"{(snapshot.n, snapshot.options.n_options)}"
        )
    mask = snapshot.option_mask()
    for lo in range(0, mask.shape[0], _CHUNK):
        v = value[lo : lo + _CHUNK]
        mask[lo : lo + _CHUNK] &= np.isfinite(v) & (v > 0)
    if redial_headroom is not None:
        agent = np.flatnonzero(snapshot.options.channel == Channel.AGENT_CALL)
        mask[np.ix_(redial_crowded(snapshot, redial_headroom), agent)] = False
    return mask


class GreedyScore:
    """Rank options by model value; fill capacity greedily.

    Each account's candidates are its ``candidates`` best options plus its best
    option of every channel (so a full agent pool-hour falls back to another hour or
    another channel), in order of value.

    Args:
        model: the value model.
        candidates: best options kept per account (memory at 1M accounts).
        redial_headroom: see :class:`OptimisedAllocation`.
        policy_id: the plan's policy id.
    """

    def __init__(
        self,
        model: ValueFunction,
        *,
        candidates: int = 4,
        redial_headroom: int | None = 6,
        policy_id: str = "greedy",
    ):
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        self.model = model
        self.candidates = candidates
        self.redial_headroom = redial_headroom
        self.policy_id = policy_id
        self.last_report: dict[str, Any] = {}

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the greedy plan for ``snapshot``."""
        start = time.perf_counter()
        value = np.asarray(self.model.predict_value(snapshot))
        predicted = time.perf_counter()
        ok = _positive_allowed(snapshot, value, self.redial_headroom)
        rows = np.flatnonzero(ok.any(axis=1))
        s_ = snapshot.options.n_slots
        width = min(self.candidates, snapshot.options.n_options)
        table = np.full((rows.size, width + N_CHANNELS), -1, dtype=np.int64)
        best = np.zeros(snapshot.n)
        for lo in range(0, rows.size, _CHUNK):
            r = rows[lo : lo + _CHUNK]
            v = np.where(ok[r], value[r], -np.inf)
            top = np.argpartition(-v, width - 1, axis=1)[:, :width]
            per_channel = v.reshape(r.size, N_CHANNELS, s_).argmax(axis=2)
            per_channel += np.arange(N_CHANNELS)[None, :] * s_
            cand = np.hstack([top, per_channel])
            cand_v = np.take_along_axis(v, cand, axis=1)
            order = np.argsort(-cand_v, axis=1, kind="stable")
            cand = np.take_along_axis(cand, order, axis=1)
            cand_v = np.take_along_axis(cand_v, order, axis=1)
            table[lo : lo + r.size] = np.where(np.isfinite(cand_v), cand, -1)
            best[r] = cand_v[:, 0]
        group = np.full(snapshot.n, -1, dtype=np.int64)
        group[rows] = np.arange(rows.size)
        option, _ = fill_capacity(snapshot, table, group, best)
        chosen = _chosen_value(value, option)
        had_value = np.zeros(snapshot.n, dtype=bool)
        had_value[rows] = True
        reasons, reason = _reasons(snapshot, option, chosen, "greedy", had_value)
        self.last_report = {
            "contacts": int((option >= 0).sum()),
            "value": float(chosen.sum()),
            "predict_s": predicted - start,
            "decide_s": time.perf_counter() - start,
        }
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            reasons,
            reason,
            expected_value=chosen,
        )


class OptimisedAllocation:
    """Model value → exact allocation under capacity (and the money budget, if any).

    Args:
        model: the value model.
        redial_headroom: no agent call for an account with at least this many
            telephone attempts on the previous six days (default 6; None: off).  The
            engine redials an unanswered agent call the same day; under Reg F's
            7-in-7 rule that redial would be the 8th call and the engine's in-day gate
            would record it as ``blocked`` although the planned call was allowed.
        policy_id: the plan's policy id.
        treatments: optional
            :class:`~collsim.policies.models.treatment.TreatmentChooser`: the option set
            becomes channel × slot × treatment (offer, variant); each account keeps
            only its best allowed treatment per option before the solve (dominated
            options pruned, so the solve has the same size), and the plan carries the
            chosen offer and variant.

    Attributes:
        last_report: figures of the last decision: ``objective`` (total model value),
            ``contacts``, ``price`` and ``gap`` (money budget only; else 0),
            ``lp_bound``, ``iterations``, ``spend``, ``predict_s``, ``allocate_s``.
    """

    def __init__(
        self,
        model: ValueFunction,
        *,
        redial_headroom: int | None = 6,
        policy_id: str = "optimised",
        treatments: Any = None,
    ) -> None:
        self.model = model
        self.redial_headroom = redial_headroom
        self.policy_id = policy_id
        self.treatments = treatments
        self.last_report: dict[str, Any] = {}

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the optimal plan for the model's values."""
        start = time.perf_counter()
        value = np.asarray(self.model.predict_value(snapshot))
        treatment = None
        if self.treatments is not None:
            value, treatment = self.treatments.apply(snapshot, value)
        predicted = time.perf_counter()
        mask = _positive_allowed(snapshot, value, self.redial_headroom)
        report: dict[str, Any] = {"price": 0.0, "gap": 0.0}
        option, result = allocate_day(value, mask, snapshot)
        if result is not None:
            report.update(
                price=result.price,
                gap=result.gap,
                lp_bound=result.lp_bound,
                iterations=result.iterations,
                spend=result.spend,
            )
        chosen = _chosen_value(value, option)
        had_value = np.asarray(mask.any(axis=1))
        reasons, reason = _reasons(snapshot, option, chosen, "optimised", had_value)
        report.update(
            objective=float(chosen.sum()),
            contacts=int((option >= 0).sum()),
            predict_s=predicted - start,
            allocate_s=time.perf_counter() - predicted,
        )
        self.last_report = report
        offer = variant = None
        if treatment is not None:
            from collsim.policies.models.treatment import TREATMENT_OFFER, TREATMENT_VARIANT

            t = np.where(option >= 0, treatment[np.arange(snapshot.n), np.maximum(option, 0)], 0)
            offer, variant = TREATMENT_OFFER[t], TREATMENT_VARIANT[t]
        return Plan.from_options(
            option,
            snapshot.options,
            self.policy_id,
            reasons,
            reason,
            expected_value=chosen,
            offer=offer,
            variant=variant,
        )


class OraclePolicy:
    """RESEARCH ONLY: :class:`OptimisedAllocation` over the simulator's true values.

    The policy must see its simulation's latent state before the first decision:
    ``policy.observe_latent(sim.latent_view)`` (the engine does this in
    :meth:`~collsim.sim.engine.Simulation.step` for every
    :class:`~collsim.sim.latent.LatentAware` policy).
    """

    policy_id = "oracle"
    research_only = True

    def __init__(self) -> None:
        self._inner: OptimisedAllocation | None = None
        self._view: Any = None

    def observe_latent(self, view: Any) -> None:
        """Read values from ``view`` (a :class:`~collsim.sim.latent.LatentView`)."""
        from collsim.policies.models.oracle import OracleValue

        if view is not self._view:
            self._view = view
            self._inner = OptimisedAllocation(OracleValue(view), policy_id=self.policy_id)

    @property
    def last_report(self) -> dict[str, Any]:
        """The inner allocation's report."""
        return {} if self._inner is None else self._inner.last_report

    def decide(self, snapshot: Snapshot) -> Plan:
        """Return the oracle's optimal plan.

        Raises:
            RuntimeError: no latent view observed yet.
        """
        if self._inner is None:
            raise RuntimeError(
                "the oracle policy reads the simulator's latent state: call "
                "policy.observe_latent(sim.latent_view) first (Simulation.step does)"
            )
        return self._inner.decide(snapshot)
