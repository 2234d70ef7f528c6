"""The oracle: the simulator's own expected value of each option — RESEARCH ONLY.

:class:`OraclePolicy` is :class:`~collsim.policies.optimised.OptimisedAllocation` over
:class:`OracleValue`: it reads the simulation's latent state through
:meth:`OraclePolicy.observe_latent` (a :class:`~collsim.sim.latent.LatentView`).

.. warning::
   :class:`OracleValue` reads the simulator's hidden truth (``sim.latent``,
   ``sim.state``, ``sim.model``): latent ability, willingness, answer profile,
   channel responsiveness, current excitation and fatigue.  No lender can observe
   these.  It exists to give research upper bounds ("how good could a policy be
   with a perfect response model?") and must never drive a production plan: it is
   built from a :class:`~collsim.sim.latent.LatentView` (not from a Snapshot), and
   :meth:`OracleValue.to_onnx` / :meth:`OracleValue.export` raise
   :class:`OracleExportError`.

The value of option (channel c, local hour h) for active account n is a one-step
approximation of the true expected gain in ``portfolio_value`` (:mod:`collsim.valuation`,
undiscounted) until the end of the run (or charge-off, whichever comes first, ``T``
days):

* **Counterfactual.**  Without the contact, the account pays within ``T`` days with
  probability ``1 − S0``, ``S0 = exp(−Λ0)``, ``Λ0 = Σ_t a·h0·exp(−(dpd+t)/s) +
  E·Σ_t exp(−t/τ)`` (self-cure hazard plus the current excitation ``E``), else it
  ends the run in the state of DPD ``dpd + days left`` (charged off past the
  charge-off DPD), worth ``balance · r_end``.  A full payment of the due cures the
  account: it is worth ``cure = due + (balance − due)·r_current − balance·r_end``; a
  partial payment ``x`` is worth ``x·(1 − r_end)``; a payment is worth
  ``V = a·cure + (1 − a)·partial·due·(1 − r_end)``.  Money the contact brings in is
  only worth the part that would not have come anyway (factor ``S0``).
* **Calls** (agent, voice bot): right-party probability ``P(answer at h)·(1 −
  wrong_party)`` (agent calls: times ``1 + P(no answer)`` for the redial); then the
  conversation outcome probabilities of :meth:`BorrowerModel.conversation_probabilities`:
  pay now ``V·S0``, promise kept ``keep·cure·S0``, payment plan (expected share of
  instalments paid × cure minus what the hazard would have paid), minus
  ``P(complaint) · valuation.complaint_cost``, plus the excitation jump
  ``J`` of every effective contact (right party or voicemail):
  ``(S0 − exp(−Λ0 − J·G))·V`` with ``G = Σ_t exp(−t/τ)``.
* **Field visits**: as calls, with the field found rate at that hour.
* **Messages** (SMS, e-mail, push, letters): read probability × (link payment
  ``V·S0`` or else the excitation gain).  Letters are read on arrival (delay).
* **Legal**: a judgment before the run ends costs the court costs and awards
  ``recovery·balance`` (garnished, counted in full) with probability
  ``success·a·(1 − nothing_recovered_share)``, else the account is charged off
  (``r_charged_off``);
  else the case is open at the end (``r_legal_pending``); minus the account's value
  left in collection (``balance·r_end`` + what the hazard would have paid), minus the
  case cost.  Suing an account that would otherwise cure or stay early is a loss.
* minus the expected cost of the attempt(s) (per attempt plus per minute of the
  expected handle time).

Ignored (second order): discounting, fatigue and complaint/cease risk for later contacts, the
growth of the amount due at the next cycle, overlap of pay-now and excitation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collsim.behaviour import ACTIVE
from collsim.plan import Plan, Snapshot
from collsim.policies.optimised import OptimisedAllocation
from collsim.valuation import CHARGED_OFF_STATE, CURRENT, LEGAL_PENDING, terminal_rates
from collsim.vocab import CHANNELS, MESSAGES, N_CHANNELS, Channel, bucket_of


class OracleExportError(RuntimeError):
    """Raised on any attempt to export the oracle (it reads latent state)."""


class OracleValue:
    """RESEARCH ONLY: true expected option values read from a running Simulation.

    Args:
        sim: the :class:`~collsim.sim.latent.LatentView` of the simulation whose
            hidden state is read.

    Attributes:
        research_only: always True (marks the object for checkers).
    """

    research_only = True
    exportable = False

    def __init__(self, sim: Any) -> None:
        from collsim.sim.latent import LatentView

        if not isinstance(sim, LatentView):
            raise TypeError("OracleValue is built from a LatentView (it reads latent state)")
        self._sim = sim

    def to_onnx(self, *args: object, **kwargs: object) -> None:
        """Always raises: the oracle reads latent state and is never exported."""
        raise OracleExportError(
            "OracleValue reads the simulator's latent state; it is a research upper bound "
            "and cannot be exported"
        )

    export = to_onnx

    def predict_value(self, snapshot: Snapshot) -> np.ndarray:
        """float32 [N, K]: the oracle value of every option (0 where nothing is allowed).

        Raises:
            ValueError: the snapshot is not the bound simulation's current day.
        """
        sim = self._sim
        if snapshot.n != sim.n or snapshot.day != sim.day:
            raise ValueError("OracleValue: the snapshot is not today's snapshot of its simulation")
        out = np.zeros((snapshot.n, snapshot.options.n_options), dtype=np.float32)
        idx = np.flatnonzero(snapshot.mask.any(axis=(1, 2)) & (sim.state.status == ACTIVE))
        if idx.size:
            out[idx] = self._values(idx, snapshot)
        return out

    # ------------------------------------------------------------------ internals
    def _values(self, idx: np.ndarray, snapshot: Snapshot) -> np.ndarray:
        sim = self._sim
        cfg = sim.scenario
        beh = cfg.behaviour
        conv = beh.conversation
        model, lat, st, p = sim.model, sim.latent, sim.state, sim.portfolio
        opts = snapshot.options
        m = idx.size

        # Counterfactual: the hazard over the remaining horizon.
        days_left = max(cfg.sim.days - sim.day_index, 1)
        dpd = p.dpd[idx].astype(float)
        horizon = np.clip(np.minimum(days_left, cfg.sim.charge_off_dpd - dpd), 1, None)
        t_max = int(horizon.max())
        t = np.arange(t_max, dtype=float)
        alive = t[None, :] < horizon[:, None]  # [M, T]
        scale, tau = beh.hazard_dpd_scale_days, beh.excitation_decay_days
        decay = np.exp(-t / tau)
        g = (alive * decay[None, :]).sum(axis=1)  # Σ exp(-t/τ) over the horizon
        base_sum = np.exp(-dpd / scale) * (alive * np.exp(-t / scale)[None, :]).sum(axis=1)
        a, w = lat.ability[idx], lat.willingness[idx]
        lam0 = a * lat.self_cure_hazard[idx] * base_sum + st.excitation[idx] * g
        s0 = np.exp(-lam0)
        due, balance = p.amount_due[idx], p.balance[idx]
        rates = terminal_rates(cfg.valuation)
        end_dpd = dpd + days_left
        r_end = np.where(
            end_dpd >= cfg.sim.charge_off_dpd,
            rates[CHARGED_OFF_STATE],
            rates[bucket_of(end_dpd.astype(np.int64))],
        )
        cure_value = due + (balance - due) * rates[CURRENT] - balance * r_end
        v_pay = a * cure_value + (1.0 - a) * beh.partial_payment_fraction * due * (1.0 - r_end)
        complaint_cost = cfg.valuation.complaint_cost
        fatigue = 1.0 + beh.fatigue_effect * st.fatigue[idx]

        def excitation_gain(channel: int, g_eff: np.ndarray) -> np.ndarray:
            jump = model.jump[channel] * w * lat.channel_response[idx, channel] / fatigue
            return (s0 - np.exp(-lam0 - jump * g_eff)) * v_pay

        def conversation_gain(channel: int) -> np.ndarray:
            q = model.conversation_probabilities(idx, np.full(m, channel), st)
            keep = lat.promise_keep[idx] * (0.5 + 0.5 * a)
            k = lat.plan_keep[idx]
            n_inst = conv.plan_instalments
            plan_frac = sum(k**i for i in range(1, n_inst + 1)) / n_inst
            plan_ok = st.plan_remaining[idx] == 0
            plan_gain = np.where(plan_ok, cure_value * plan_frac - (1.0 - s0) * v_pay, 0.0)
            return (
                q[:, 0] * v_pay * s0
                + q[:, 1] * keep * cure_value * s0
                + q[:, 2] * plan_gain
                - q[:, 5] * complaint_cost
            )

        costs = {c: cfg.channels[c] for c in CHANNELS}
        values = np.zeros((m, opts.n_options))
        for c in range(N_CHANNELS):
            cols = np.flatnonzero(opts.channel == c)
            name = CHANNELS[c]
            per_attempt = costs[name].cost_per_attempt
            per_min = costs[name].cost_per_minute
            handle = costs[name].handle_time_s
            if c in (Channel.AGENT_CALL, Channel.VOICE_BOT, Channel.FIELD_VISIT):
                talk = conversation_gain(c)
                exc = excitation_gain(c, g)
                for k in cols:
                    hour = np.full(m, opts.hour[k])
                    if c == Channel.FIELD_VISIT:
                        p_ans = beh.field_found_rate * model.hour_factor(idx, hour)
                        p_right, p_vm, attempts = p_ans, np.zeros(m), np.ones(m)
                    else:
                        p_ans = model.answer_probability(idx, hour, st)
                        p_right = p_ans * (1.0 - beh.wrong_party_rate)
                        p_vm = 0.5 * (1.0 - p_ans)
                        redial = cfg.sim.max_redials > 0 and c == Channel.AGENT_CALL
                        attempts = 1.0 + (1.0 - p_ans) * redial
                        p_right = p_right * attempts
                    effective = np.clip(p_right + p_vm, 0.0, 1.0)
                    seconds = (
                        p_ans * (1.0 - beh.wrong_party_rate) * handle.get("conversation", 0.0)
                        + p_ans * beh.wrong_party_rate * handle.get("wrong_party", 0.0)
                        + p_vm * handle.get("voicemail", 0.0)
                        + 0.5 * (1.0 - p_ans) * handle.get("no_answer", 0.0)
                    )
                    cost = attempts * (per_attempt + per_min * seconds / 60.0)
                    values[:, k] = p_right * talk + effective * exc - cost
            elif c in MESSAGES or c == Channel.LETTER:
                delay = costs[name].delay_days
                g_eff = (
                    (alive[:, delay:] * decay[None, : t_max - delay]).sum(axis=1)
                    if (delay < t_max)
                    else np.zeros(m)
                )
                link = model.link_payment_probability(idx, np.full(m, c))
                exc = excitation_gain(c, g_eff)
                delivered = 1.0 - model.not_delivered[c]
                for k in cols:
                    if opts.hour[k] >= 0:
                        hf = model.hour_factor(idx, np.full(m, opts.hour[k]))
                    else:
                        hf = np.full(m, 0.8)
                    read = delivered * lat.open_rate[idx] * (0.5 + 0.5 * hf)
                    values[:, k] = read * (link * v_pay * s0 + (1.0 - link) * exc) - per_attempt
            elif c == Channel.LEGAL:
                legal = cfg.legal
                in_time = float(days_left > legal.duration_days)
                p_won = legal.success_rate * a * (1.0 - legal.nothing_recovered_share)
                judged = (
                    balance
                    * (p_won * legal.recovery_fraction + (1.0 - p_won) * rates[CHARGED_OFF_STATE])
                    - legal.court_cost_per_case
                )
                sued = in_time * judged + (1.0 - in_time) * balance * rates[LEGAL_PENDING]
                kept = balance * r_end + (1.0 - s0) * v_pay  # the account left in collection
                values[:, cols] = (sued - kept - legal.cost_per_case - per_attempt)[:, None]
        values[:, ~opts.valid] = 0.0
        return values.astype(np.float32)


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
