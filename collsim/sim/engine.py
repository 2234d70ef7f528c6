"""The simulation engine: one decision epoch a day, numpy for accounts, SimPy for queues.

Data flow of one simulated day::

    state -> Snapshot (compliance mask, capacity) -> Policy.decide -> Plan
    -> gate (compliance, budgets) -> messages and voice bot (numpy batches)
    -> agent calls hour by hour in SimPy (queues, handle times, redials, in-day gate)
    -> field visits, post and courts in SimPy -> borrower responses (numpy)
    -> payments, promises, plans, DPD, rolls, charge-off -> ledger events

All behavioural randomness comes from :class:`collsim.rng.RunRandom` keyed draws.

Treatments (offer, variant; :mod:`collsim.treatments`).  After the contact gate and
the budgets, a treatment gate checks each planned (offer, variant): the scenario must
support it on the channel at the account's DPD (rule id ``treatment.scenario``) and
no treatment rule of the rule set may forbid it.  A forbidden treatment is
*downgraded* to (none, standard) and the contact still goes ahead (the contact itself
is lawful); a ``treatment_blocked`` event records the planned offer/variant and the
rule id.  Accepted offers: an instalment plan starts the payment-plan machinery with
the offer's terms (instalments kept or broken; a broken plan returns the account to
collection); a settlement books a payment of (1 - discount) × balance, a
``settlement`` event whose amount is the discount given, and closes the account; a
payment holiday freezes DPD and stops collection for N days (status HOLIDAY), then a
``holiday_ended`` event returns the account to collection.  Days without any
treatment take exactly the code paths and draws of a run without treatments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from collsim.behaviour import (
    ACTIVE,
    CHARGED_OFF,
    CLOSED,
    CURE_PAYMENT,
    CURE_PLAN,
    CURED,
    HOLIDAY,
    LEGAL,
    BorrowerModel,
    BorrowerState,
    ContactResult,
)
from collsim.capacity import build_resources, centre_hour_of
from collsim.compliance import ContactWindow, RuleSet, load_ruleset, with_legal_floor
from collsim.config import Scenario
from collsim.history import History
from collsim.ledger import EVENT, Ledger
from collsim.plan import OptionSpace, Plan, Policy, Resources, Snapshot
from collsim.portfolio import ContactState, Latent, Portfolio, day_number, generate
from collsim.rng import RunRandom
from collsim.sim.centre import AgentPool, Courts, FieldTeam, Post
from collsim.sim.latent import LatentAware, LatentView
from collsim.treatments import SCENARIO_RULE_ID, TreatmentTables
from collsim.vocab import (
    CHANNELS,
    IS_CONVERSATION,
    IS_TELEPHONE,
    IS_TIMED,
    N_CHANNELS,
    OFFERS,
    VARIANTS,
    Channel,
    Offer,
    Outcome,
    bucket_of,
)

NOT_IN_COLLECTION = "not_in_collection"
"""Rule id recorded when a plan contacts an account that is not in collection."""

_MESSAGE_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.APP_PUSH)
_MINUTE = 60.0


class PolicyError(RuntimeError):
    """A policy returned a malformed plan."""


@dataclass
class DayStats:
    """A few figures of the last simulated day (for progress displays)."""

    day: int
    planned: int
    attempts: int
    recovered: float


class Simulation:
    """A scenario simulated day by day; the policy is given to :meth:`run` or :meth:`step`.

    Args:
        scenario: the scenario.
        seed: the run's seed (one SeedSequence for everything).
        n_accounts: portfolio size (default: the scenario's); capacity scales with it.
        ruleset: rule set name or path (default: the scenario's).
        portfolio, latent: a given population instead of a generated one.
        history: contact history before the first day.

    Example:
        >>> from collsim.config import load_scenario
        >>> from collsim.policies.baselines import NoContact
        >>> sim = Simulation(load_scenario("default"), seed=1, n_accounts=200)
        >>> ledger = sim.run(NoContact(), days=3)
        >>> len(ledger) > 0
        True
    """

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        *,
        n_accounts: int | None = None,
        ruleset: str | RuleSet | None = None,
        portfolio: Portfolio | None = None,
        latent: Latent | None = None,
        history: History | None = None,
    ) -> None:
        if n_accounts is not None and n_accounts != scenario.portfolio.n_accounts:
            scenario = scenario.scaled_to(n_accounts)
        self.scenario = scenario
        self.random = RunRandom(seed)
        if portfolio is None or latent is None:
            portfolio, latent = generate(scenario, seed)
        self.portfolio = portfolio.copy()
        self.latent = latent
        n = self.portfolio.n
        self.treatments = TreatmentTables.from_scenario(scenario, latent.segments)
        self.model = BorrowerModel(
            scenario.behaviour, latent, self.treatments, scenario.sim.operating_hours
        )
        self._offer: np.ndarray | None = None  # int8 [N] today's offers (None: no treatment)
        self._variant: np.ndarray | None = None
        self.state = BorrowerState.initial(n)
        if isinstance(ruleset, RuleSet):
            self.ruleset = ruleset
        else:
            self.ruleset = load_ruleset(ruleset or scenario.ruleset)
        self.ruleset = with_legal_floor(self.ruleset, scenario.legal.min_dpd)
        self.options = OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64))
        self.first_day = day_number(scenario.sim.start_date)
        self.day = self.first_day
        self.window = (
            ContactWindow.from_history(history, n, self.day)
            if history is not None
            else ContactWindow.empty(n, self.day)
        )
        self.contact = ContactState.empty(n)
        self.ledger = Ledger(valuation=scenario.valuation)
        self.policy_rng = self.random.generator("policy")
        self.env = simpy.Environment()
        self._pools = {
            p.name: AgentPool(self.env, p.name, dict(p.agents_by_hour))
            for p in scenario.capacity.agent_pools
        }
        self._call_pool = next(
            (p for p in scenario.capacity.agent_pools if "agent_call" in p.channels), None
        )
        self._generation = np.zeros(n, dtype=np.int64)  # bumped when a row gets a new account
        self.post = Post(self.env, self._generation)
        self.courts = Courts(self.env, scenario.legal.duration_days * 24.0, self._generation)
        self._garnish_amount = np.zeros(n)  # per garnishment instalment (legal recoveries)
        self._garnish_left = np.zeros(n, dtype=np.int64)  # instalments still to come
        self.field = FieldTeam(self.env, scenario.sim.field_agents, scenario.sim.field_visit_hours)
        channels = [scenario.channels[c] for c in CHANNELS]
        self._cost_per_attempt = np.array([c.cost_per_attempt for c in channels])
        self._cost_per_minute = np.array([c.cost_per_minute for c in channels])
        kinds = ("no_answer", "voicemail", "wrong_party", "conversation")
        self._handle_s = np.array([[c.handle_time_s.get(k, 0.0) for k in kinds] for c in channels])
        self._resources_cache: dict[tuple[int, ...], Resources] = {}
        self._snapshot: Snapshot | None = None
        self._mark = (0, 0.0, 0)
        self.policy_id: str | None = None  # the policy last given to step()
        self._latent_view = LatentView(self)
        self._start_events()

    # ------------------------------------------------------------------ public
    @property
    def n(self) -> int:
        """Number of accounts."""
        return self.portfolio.n

    @property
    def day_index(self) -> int:
        """Days simulated so far."""
        return self.day - self.first_day

    @property
    def latent_view(self) -> LatentView:
        """RESEARCH ONLY: the read-only view handed to LatentAware policies."""
        return self._latent_view

    def active(self) -> np.ndarray:
        """bool [N]: accounts in collection today."""
        return self.state.status == ACTIVE

    def run(
        self,
        policy: Policy,
        days: int | None = None,
        progress: Callable[[DayStats], None] | None = None,
    ) -> Ledger:
        """Simulate ``days`` days (default: the scenario's) under ``policy``.

        Args:
            policy: the policy deciding each day's plan.
            days: days to simulate (default: the scenario's).
            progress: called with each day's :class:`DayStats`.

        Returns:
            The ledger (all days simulated so far).
        """
        for _ in range(days if days is not None else self.scenario.sim.days):
            stats = self.step(policy)
            if progress is not None:
                progress(stats)
        return self.ledger

    def replace_accounts(self, idx: np.ndarray, portfolio: Portfolio, latent: Latent) -> None:
        """Put new accounts in the rows ``idx`` (for environments with autoreset).

        The rows get the new observable and latent state, a fresh borrower state,
        an empty contact window and contact summary, and a ``start`` event; letters
        in the post and court cases of the rows' previous accounts are dropped.  If
        called between :meth:`begin_day` and :meth:`finish_day`, the day's snapshot
        rows (``active`` and ``mask``) are recomputed for the new accounts.
        """
        idx = np.asarray(idx, dtype=np.int64)
        self._generation[idx] += 1
        self.portfolio.put(idx, portfolio)
        self.latent.put(idx, latent)
        fresh = BorrowerState.initial(idx.size)
        for f in dataclasses.fields(fresh):
            getattr(self.state, f.name)[idx] = getattr(fresh, f.name)
        empty = ContactState.empty(idx.size)
        for f in dataclasses.fields(empty):
            getattr(self.contact, f.name)[idx] = getattr(empty, f.name)
        self.window.attempts[idx] = 0
        self.window.conversations[idx] = 0
        self._garnish_amount[idx] = 0.0
        self._garnish_left[idx] = 0
        self.ledger.append(
            "start",
            self.day,
            idx,
            amount=self.portfolio.balance[idx],
            bucket=bucket_of(self.portfolio.dpd[idx]),
        )
        if self._snapshot is not None:
            window = ContactWindow(
                self.day, self.window.attempts[idx], self.window.conversations[idx]
            )
            active = self.state.status[idx] == ACTIVE
            self._snapshot.active[idx] = active
            mask, channels = self.ruleset.mask_and_channels(
                self.portfolio.take(idx), window, self.options.slot_hours, within=active
            )
            self._snapshot.mask[idx] = mask
            if self._snapshot.channel_allowed is not None:
                self._snapshot.channel_allowed[idx] = channels

    def resources(self) -> Resources:
        """The day's resources (cached per set of UTC offsets, i.e. per DST regime)."""
        shift = tuple(centre_hour_of(self.scenario.capacity, self.portfolio.timezones, self.day))
        if shift not in self._resources_cache:
            self._resources_cache[shift] = build_resources(
                self.scenario.capacity,
                self.options,
                self.portfolio.timezones,
                self.day,
                self.scenario.channels,
            )
        return self._resources_cache[shift]

    def snapshot(self) -> Snapshot:
        """What the policy may see today (no latent state)."""
        active = self.active()
        mask, channels = self.ruleset.mask_and_channels(
            self.portfolio, self.window, self.options.slot_hours, within=active
        )
        self.contact.attempts_7d, self.contact.rpc_7d = self.window.totals_before_today()
        return Snapshot(
            day=self.day,
            accounts=self.portfolio,
            contact=self.contact,
            active=active,
            mask=mask,
            options=self.options,
            resources=self.resources(),
            rng=self.policy_rng,
            blocking_rule=self._blocking_rule,
            treatment_rule=self._treatment_rule,
            channel_allowed=channels,
        )

    def _treatment_rule(
        self, account: np.ndarray, offer: np.ndarray, variant: np.ndarray
    ) -> np.ndarray:
        """Rule ids ("" if allowed) of the first treatment rule forbidding each treatment."""
        _, rule = self.ruleset.treatment_allowed(
            self.portfolio, self.window, account, offer, variant
        )
        return rule

    def _blocking_rule(
        self, account: np.ndarray, channel: np.ndarray, hour: np.ndarray
    ) -> np.ndarray:
        """Rule ids ("" if allowed) of the first rule forbidding each contact today."""
        first = self.ruleset.first_violation(self.portfolio, self.window, account, channel, hour)
        names = np.asarray((*self.ruleset.rule_ids, ""), dtype=object)
        return names[np.where(first >= 0, first, len(self.ruleset.rule_ids))]

    def step(self, policy: Policy) -> DayStats:
        """Simulate one day: begin it, let ``policy`` decide, finish it.

        A research policy implementing :class:`~collsim.sim.latent.LatentAware` is
        handed the :class:`~collsim.sim.latent.LatentView` before it decides.
        """
        self.policy_id = policy.policy_id
        snapshot = self.begin_day()
        if isinstance(policy, LatentAware):
            policy.observe_latent(self._latent_view)
        return self.finish_day(policy.decide(snapshot))

    def begin_day(self) -> Snapshot:
        """Start the day (post, courts, promises and instalments due); return its Snapshot.

        Environments call this and :meth:`finish_day` instead of :meth:`step`.
        """
        if self.day > self.first_day:
            self.window.advance(self.day)
            self.model.decay(self.state)
        self._morning()
        self._snapshot = self.snapshot()
        self._mark = (self.ledger.mark(), self._recovered, self._attempts)
        return self._snapshot

    def finish_day(self, plan: Plan) -> DayStats:
        """Execute ``plan`` through the gate, the channels and the borrowers; end the day."""
        if self._snapshot is None:
            raise RuntimeError("finish_day() called without begin_day()")
        snapshot, self._snapshot = self._snapshot, None
        self._check_plan(plan)
        option = self._gate(plan, snapshot)
        self._treatment_gate(plan, option)
        self._execute(plan, option, snapshot.resources)
        self._offer = self._variant = None
        self._daily_payments()
        self._end_of_day()
        _, recovered_before, attempts_before = self._mark
        stats = DayStats(
            day=self.day,
            planned=int(plan.contacted().sum()),
            attempts=self._attempts - attempts_before,
            recovered=self._recovered - recovered_before,
        )
        self.day += 1
        return stats

    def day_events(self) -> dict[str, np.ndarray]:
        """The ledger rows since the current (or just finished) day's decision, as columns.

        The morning's events (post, judgments, promises and instalments due) come
        before the decision; they are in the previous call's window.  After
        ``ledger.clear()`` the window starts at the cleared ledger.
        """
        return self.ledger.since(min(self._mark[0], self.ledger.mark()))

    def _run_clock(self, until_h: float) -> None:
        """Advance the SimPy clock to ``until_h`` (no-op if already there)."""
        if until_h > self.env.now:
            self.env.run(until=until_h)

    # ------------------------------------------------------------------ set-up
    def _start_events(self) -> None:
        p = self.portfolio
        self._recovered = 0.0
        self._attempts = 0
        self.ledger.append(
            "start", self.day, np.arange(self.n), amount=p.balance, bucket=bucket_of(p.dpd)
        )
        for name in self.ruleset.rule_ids:
            self.ledger.rule_code(name)

    def _check_plan(self, plan: Plan) -> None:
        for name in ("channel", "slot_hour", "priority"):
            value = getattr(plan, name)
            if not isinstance(value, np.ndarray) or value.shape != (self.n,):
                raise PolicyError(
                    f"policy {plan.policy_id}: plan.{name} must have shape ({self.n},)"
                )
        if np.any((plan.channel < -1) | (plan.channel >= N_CHANNELS)):
            raise PolicyError(f"policy {plan.policy_id}: plan has an unknown channel code")
        for name, table in (("offer", OFFERS), ("variant", VARIANTS)):
            value = np.asarray(getattr(plan, name))
            if value.shape != (self.n,) or np.any((value < 0) | (value >= len(table))):
                raise PolicyError(
                    f"policy {plan.policy_id}: plan.{name} must be ({self.n},) codes "
                    f"0..{len(table) - 1}"
                )

    # ------------------------------------------------------------------ morning
    def _morning(self) -> None:
        """Post arrivals, court judgments, promises and instalments due, disputes resolved."""
        self._run_clock(self.day_index * 24.0)
        day = self.day
        arrived = self.post.collect()
        arrived = arrived[self.state.status[arrived] == ACTIVE]
        if arrived.size:
            channel = np.full(arrived.size, Channel.LETTER, dtype=np.int64)
            result = self.model.message(
                arrived,
                channel,
                np.full(arrived.size, -1),
                np.ones(arrived.size),
                self.random.uniform("letter_open", day, arrived),
            )
            self.model.excite(arrived, channel, result.effective, result.reached, self.state)
            self._link_payments(arrived[result.effective], Channel.LETTER, -1)
        self._judgments(self.courts.collect())
        self._garnishments(self.courts.collect_instalments())
        self._holidays_end()
        self._redefaults()
        self._promises_due()
        self._instalments_due()
        resolved = self.state.dispute_until == day
        self.portfolio.dispute_open[resolved] = False
        self.state.dispute_until[resolved] = -1

    def _judgments(self, judged: np.ndarray) -> None:
        """Judgments: court costs; lost or unrecoverable cases are charged off.

        A case is won with P = success_rate × ability; a won case recovers nothing
        with P = nothing_recovered_share.  The others recover recovery_fraction ×
        balance in ``recovery_instalments`` equal garnishment instalments, the first
        today, then one every ``recovery_interval_days`` (SimPy timeouts in the
        courts) until all are paid or the run ends; the account closes with the last.
        """
        if judged.size == 0:
            return
        legal = self.scenario.legal
        u = self.random.uniform("legal", self.day, judged)
        won = u < legal.success_rate * self.latent.ability[judged]
        if legal.nothing_recovered_share > 0.0:
            empty = self.random.uniform("legal_nothing", self.day, judged)
            won &= empty >= legal.nothing_recovered_share
        winners = judged[won]
        award = np.where(won, legal.recovery_fraction * self.portfolio.balance[judged], 0.0)
        self.ledger.append(
            "legal_closed",
            self.day,
            judged,
            outcome=np.where(won, Outcome.PAYMENT, Outcome.REFUSAL),
            amount=award,
            cost=legal.court_cost_per_case,
        )
        count = legal.recovery_instalments
        total = award[won]
        self._garnish_amount[winners] = np.round(total / count, 2)
        self._garnish_left[winners] = count
        self.courts.garnish(winners, count - 1, legal.recovery_interval_days * 24.0)
        self._garnishments(winners)
        self._charge_off(judged[~won])

    def _garnishments(self, due: np.ndarray) -> None:
        """Garnishment instalments due: a legal ``payment`` each; the last closes the account."""
        due = due[(self.state.status[due] == LEGAL) & (self._garnish_left[due] > 0)]
        if due.size == 0:
            return
        p = self.portfolio
        amount = np.minimum(self._garnish_amount[due], p.balance[due])
        self._record_payment(due, amount, Channel.LEGAL, -1)
        p.balance[due] -= amount
        self._garnish_left[due] -= 1
        done = due[self._garnish_left[due] == 0]
        self._garnish_amount[done] = 0.0
        self.state.status[done] = CLOSED

    def _promises_due(self) -> None:
        p = self.portfolio
        due = np.flatnonzero((p.promise_due_day == self.day) & (self.state.status == ACTIVE))
        if due.size == 0:
            return
        kept = self.model.promise_kept(due, self.random.uniform("promise", self.day, due))
        self.ledger.append("promise_kept", self.day, due[kept], amount=p.promise_amount[due[kept]])
        self.ledger.append("promise_broken", self.day, due[~kept])
        self.contact.broken_promises[due[~kept]] += 1
        self._apply_payment(due[kept], p.promise_amount[due[kept]], -1, -1)
        p.promise_due_day[due] = -1
        p.promise_amount[due] = 0.0

    def _instalments_due(self) -> None:
        st = self.state
        due = np.flatnonzero(
            (st.plan_next_day == self.day) & (st.plan_remaining > 0) & (st.status == ACTIVE)
        )
        if due.size == 0:
            return
        offered = st.plan_interval[due] > 0
        boost = st.plan_keep_mult[due] if np.any(offered) else None
        paid = self.model.instalment_paid(
            due, self.random.uniform("instalment", self.day, due), boost
        )
        tag = np.where(offered, int(Offer.INSTALMENT_PLAN), -1)
        broken = due[~paid]
        self.ledger.append("plan_broken", self.day, broken, offer=tag[~paid])
        self._end_plan(broken)
        payers = due[paid]
        st.plan_remaining[payers] -= 1
        st.plan_next_day[payers] += np.where(
            st.plan_interval[payers] > 0,
            st.plan_interval[payers],
            self.scenario.behaviour.conversation.plan_interval_days,
        )
        last = payers[st.plan_remaining[payers] == 0]
        amount = np.where(
            st.plan_remaining[payers] == 0,
            self.portfolio.amount_due[payers],
            st.plan_amount[payers],
        )
        last_tag = tag[paid][st.plan_remaining[payers] == 0]
        self._apply_payment(payers, amount, -1, -1)
        self.ledger.append("plan_completed", self.day, last, offer=last_tag)
        self._end_plan(last)
        self.state.cure_kind[last[self.state.status[last] == CURED]] = CURE_PLAN

    def _end_plan(self, idx: np.ndarray) -> None:
        self.state.plan_remaining[idx] = 0
        self.state.plan_next_day[idx] = -1
        self.state.plan_interval[idx] = -1
        self.state.plan_keep_mult[idx] = 1.0
        self.portfolio.hardship_plan[idx] = False

    def _redefaults(self) -> None:
        """Cured accounts that fall delinquent again: 1 DPD, one cycle's minimum due."""
        st, p = self.state, self.portfolio
        cured = np.flatnonzero(st.status == CURED)
        if cured.size == 0:
            return
        u = self.random.uniform("redefault", self.day, cured)
        again = cured[(u < self.model.redefault_probability(cured, st)) & (p.balance[cured] > 0)]
        if again.size == 0:
            return
        due = self._due_fraction()[p.product[again]] * p.balance[again]
        p.amount_due[again] = np.round(np.minimum(p.balance[again], due), 2)
        p.dpd[again] = 1
        st.status[again] = ACTIVE
        st.excitation[again] = 0.0
        self.ledger.append(
            "redefault", self.day, again, amount=p.amount_due[again], bucket=bucket_of(p.dpd[again])
        )

    def _due_fraction(self) -> np.ndarray:
        """float [products]: the minimum due per cycle as a share of the balance."""
        products = self.scenario.portfolio.products
        return np.array(
            [
                products[name].due_fraction if name in products else 0.0
                for name in self.portfolio.products
            ]
        )

    def _holidays_end(self) -> None:
        """Accounts whose payment holiday ends today return to collection."""
        st = self.state
        ended = np.flatnonzero((st.status == HOLIDAY) & (st.holiday_until == self.day))
        if ended.size == 0:
            return
        st.status[ended] = ACTIVE
        st.holiday_until[ended] = -1
        self.ledger.append(
            "holiday_ended",
            self.day,
            ended,
            offer=int(Offer.PAYMENT_HOLIDAY),
            bucket=bucket_of(self.portfolio.dpd[ended]),
        )

    # ------------------------------------------------------------------ gate
    def _gate(self, plan: Plan, snapshot: Snapshot) -> np.ndarray:
        """Return the option of each account that passes the compliance gate and budgets."""
        try:
            option = self.options.encode(plan.channel, plan.slot_hour)
        except ValueError as exc:
            raise PolicyError(f"policy {plan.policy_id}: {exc}") from None
        rows = np.flatnonzero(option >= 0)
        opt = option[rows]
        channel = opt // self.options.n_slots
        slot = opt % self.options.n_slots
        allowed = snapshot.mask[rows, channel, slot]
        blocked = rows[~allowed]
        if blocked.size:
            self._record_blocked(
                blocked,
                plan.channel[blocked].astype(np.int64),
                plan.slot_hour[blocked].astype(np.int64),
            )
            option[blocked] = -1
        return self._fit_budgets(option, plan.priority, snapshot.resources)

    def _treatment_gate(self, plan: Plan, option: np.ndarray) -> None:
        """Set today's offers and variants; downgrade unsupported or forbidden ones.

        Leaves ``_offer``/``_variant`` None when no contact going ahead carries a
        treatment, so such days take the code paths of a run without treatments.
        """
        offer = np.asarray(plan.offer, dtype=np.int64)
        variant = np.asarray(plan.variant, dtype=np.int64)
        rows = np.flatnonzero((option >= 0) & ((offer > 0) | (variant > 0)))
        if rows.size == 0:
            return
        channel = option[rows] // self.options.n_slots
        o, v = offer[rows], variant[rows]
        supported = self.treatments.supported(o, v, channel, self.portfolio.dpd[rows])
        _, rule = self.ruleset.treatment_allowed(self.portfolio, self.window, rows, o, v)
        rule = np.where(supported, rule, SCENARIO_RULE_ID)
        bad = rule != ""
        if np.any(bad):
            self.ledger.append(
                "treatment_blocked",
                self.day,
                rows[bad],
                channel=channel[bad],
                hour=self.options.hour[option[rows[bad]]],
                rule=np.array([self.ledger.rule_code(r) for r in rule[bad]], dtype=np.int16),
                offer=o[bad],
                variant=v[bad],
                bucket=bucket_of(self.portfolio.dpd[rows[bad]]),
            )
        if np.all(bad):
            return
        self._offer = np.zeros(self.n, dtype=np.int8)
        self._variant = np.zeros(self.n, dtype=np.int8)
        self._offer[rows[~bad]] = o[~bad]
        self._variant[rows[~bad]] = v[~bad]

    def _record_blocked(self, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray) -> None:
        """Ledger 'blocked' events with the first rule that forbids each contact."""
        rule = np.full(idx.size, self.ledger.rule_code(NOT_IN_COLLECTION), dtype=np.int16)
        active = self.state.status[idx] == ACTIVE
        if np.any(active):
            first = self.ruleset.first_violation(
                self.portfolio, self.window, idx[active], channel[active], hour[active]
            )
            codes = np.array(
                [self.ledger.rule_code(r) for r in self.ruleset.rule_ids], dtype=np.int16
            )
            rule[active] = np.where(first >= 0, codes[np.maximum(first, 0)], rule[active])
        self.ledger.append(
            "blocked",
            self.day,
            idx,
            channel=channel,
            hour=np.where(IS_TIMED[channel], hour, -1),
            rule=rule,
            bucket=bucket_of(self.portfolio.dpd[idx]),
        )

    def _fit_budgets(
        self, option: np.ndarray, priority: np.ndarray, resources: Resources
    ) -> np.ndarray:
        """Drop planned contacts beyond daily budgets (by plan priority); record overflow.

        Agent pool-hours are not cut here: the SimPy contact centre decides which calls fit.
        """
        rows = np.flatnonzero(option >= 0)
        resource = resources.resource_by_zone[self.portfolio.timezone[rows], option[rows]]
        is_pool = np.array([p is not None for p in resources.pool_of_resource], dtype=bool)
        limited = (resource >= 0) & ~is_pool[np.maximum(resource, 0)]
        rows, resource = rows[limited], resource[limited]
        order = np.lexsort((rows, priority[rows], resource))
        rows, resource = rows[order], resource[order]
        starts = np.r_[0, np.flatnonzero(np.diff(resource)) + 1]
        rank = np.arange(rows.size) - np.repeat(starts, np.diff(np.r_[starts, rows.size]))
        over = rank >= resources.capacity[resource]
        dropped = rows[over]
        if dropped.size:
            codes = np.array(
                [self.ledger.rule_code(resources.names[r]) for r in resource[over]], dtype=np.int16
            )
            channel = option[dropped] // self.options.n_slots
            self.ledger.append(
                "overflow",
                self.day,
                dropped,
                channel=channel,
                hour=self.options.hour[option[dropped]],
                rule=codes,
            )
            option = option.copy()
            option[dropped] = -1
        return option

    # ------------------------------------------------------------------ execution
    def _execute(self, plan: Plan, option: np.ndarray, resources: Resources) -> None:
        chosen = np.flatnonzero(option >= 0)
        channel = option[chosen] // self.options.n_slots
        hour = self.options.hour[option[chosen]]
        for c in _MESSAGE_CHANNELS:
            sel = channel == c
            self._messages(chosen[sel], int(c), hour[sel])
        sel = channel == Channel.VOICE_BOT
        self._voice_bot(chosen[sel], hour[sel])
        sel = channel == Channel.LETTER
        self._letters(chosen[sel])
        sel = channel == Channel.LEGAL
        self._legal(chosen[sel])
        visits = chosen[channel == Channel.FIELD_VISIT]
        visit_hour = hour[channel == Channel.FIELD_VISIT]
        order = np.lexsort((visits, plan.priority[visits]))
        visits, visit_hour = visits[order], visit_hour[order]
        shift = centre_hour_of(self.scenario.capacity, self.portfolio.timezones, self.day)
        day_start_h = self.day_index * 24.0
        started = self.field.schedule_day(
            day_start_h,
            visit_hour + shift[self.portfolio.timezone[visits]],
            float(max(self.scenario.sim.operating_hours) + 1 + shift.max()),
        )
        sel = channel == Channel.AGENT_CALL
        self._agent_calls(chosen[sel], hour[sel], plan.priority[chosen[sel]], shift)
        self._run_clock(day_start_h + 24.0)
        self._field_outcomes(visits[started], visit_hour[started])
        self._overflow(
            visits[~started], int(Channel.FIELD_VISIT), visit_hour[~started], "field_team"
        )

    def _attempt_cost(self, channel: np.ndarray, duration_s: np.ndarray) -> np.ndarray:
        return (
            self._cost_per_attempt[channel] + self._cost_per_minute[channel] * duration_s / _MINUTE
        )

    def _record_attempts(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        hour: np.ndarray,
        outcome: np.ndarray,
        conversation: np.ndarray,
        duration_s: np.ndarray | None = None,
    ) -> None:
        duration = np.zeros(idx.size) if duration_s is None else duration_s
        treatment = (
            {}
            if self._offer is None or self._variant is None
            else {"offer": self._offer[idx], "variant": self._variant[idx]}
        )
        self.ledger.append(
            "attempt",
            self.day,
            idx,
            channel=channel,
            hour=hour,
            outcome=outcome,
            cost=self._attempt_cost(channel, duration),
            duration_s=duration,
            bucket=bucket_of(self.portfolio.dpd[idx]),
            **treatment,
        )
        self.window.record(idx, channel, conversation)
        self._attempts += int(idx.size)
        self.contact.last_contact_day[idx] = self.day
        self.contact.last_rpc_day[idx[conversation]] = self.day

    def _messages(self, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
        if idx.size == 0:
            return
        ch = np.full(idx.size, channel, dtype=np.int64)
        result = self.model.message(
            idx,
            ch,
            hour,
            self.random.uniform(f"deliver_{channel}", self.day, idx),
            self.random.uniform(f"open_{channel}", self.day, idx),
            self.state,
            self.random.uniform(f"message_risk_{channel}", self.day, idx),
        )
        self._record_attempts(idx, ch, hour, result.outcome, result.conversation)
        if result.opted_out is not None:
            self._opt_out(idx[result.opted_out], channel, hour[result.opted_out])
        self.model.excite(idx, ch, result.effective, result.reached, self.state)
        read, read_hour = idx[result.effective], hour[result.effective]
        variant = None
        if self._offer is not None and self._variant is not None:
            taken = self._message_offers(read, channel, read_hour)
            read, read_hour = read[~taken], read_hour[~taken]
            variant = self._variant[read].astype(np.int64)
        self._link_payments(read, channel, read_hour, variant)

    def _opt_out(self, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
        """Opt-outs from a message channel: the flag the rule sets read is set at once.

        SMS sets ``sms_opt_out``, email ``email_opt_out``; app push removes the app
        (``has_app``), so the channel's reach rule forbids it from the next contact on.
        """
        if idx.size == 0:
            return
        p = self.portfolio
        flag = {
            Channel.SMS: p.sms_opt_out,
            Channel.EMAIL: p.email_opt_out,
            Channel.APP_PUSH: p.has_app,
        }[Channel(channel)]
        flag[idx] = channel != Channel.APP_PUSH
        self.ledger.append(
            "opt_out",
            self.day,
            idx,
            channel=channel,
            hour=hour,
            bucket=bucket_of(p.dpd[idx]),
        )

    def _message_offers(self, idx: np.ndarray, channel: int, hour: np.ndarray) -> np.ndarray:
        """Offers taken through read messages' links; return bool [M] taken."""
        assert self._offer is not None and self._variant is not None
        offer = self._offer[idx].astype(np.int64)
        variant = self._variant[idx].astype(np.int64)
        p = self.model.offer_take_up(idx, offer, variant, self.portfolio.dpd[idx], message=True)
        taken = self.random.uniform(f"offer_link_{channel}", self.day, idx) < p
        self._accept_offers(
            idx[taken], offer[taken], np.full(int(taken.sum()), channel), hour[taken]
        )
        return taken

    def _link_payments(
        self,
        idx: np.ndarray,
        channel: int,
        hour: np.ndarray | int,
        variant: np.ndarray | None = None,
    ) -> None:
        """Immediate self-service payments from a read message's payment link."""
        if idx.size == 0:
            return
        ch = np.full(idx.size, channel, dtype=np.int64)
        pays = self.random.uniform(
            f"link_{channel}", self.day, idx
        ) < self.model.link_payment_probability(idx, ch, variant)
        hour_arr = np.broadcast_to(np.asarray(hour), idx.shape)
        self._pay_due(idx[pays], channel, hour_arr[pays], purpose=f"link_{channel}")

    def _voice_bot(self, idx: np.ndarray, hour: np.ndarray) -> None:
        if idx.size == 0:
            return
        self._calls(idx, np.full(idx.size, Channel.VOICE_BOT, dtype=np.int64), hour, attempt=0)

    def _calls(
        self, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray, attempt: int
    ) -> np.ndarray:
        """Draw and apply the outcomes of calls made; return their outcomes."""
        result, duration = self._draw_calls(idx, channel, hour, attempt)
        self._apply_calls(idx, channel, hour, result, duration)
        return result.outcome

    def _draw_calls(
        self, idx: np.ndarray, channel: np.ndarray, hour: np.ndarray, attempt: int
    ) -> tuple[ContactResult, np.ndarray]:
        """Outcomes and handle times of calls, from draws keyed by (account, day, attempt)."""
        day = self.day
        treatment = None
        if self._offer is not None and self._variant is not None:
            treatment = (
                self._offer[idx].astype(np.int64),
                self._variant[idx].astype(np.int64),
                self.portfolio.dpd[idx],
                self.random.uniform("offer_take", day, idx, attempt),
            )
        result = self.model.call(
            idx,
            channel,
            hour,
            self.state,
            self.random.uniform("answer", day, idx, attempt),
            self.random.uniform("party", day, idx, attempt),
            self.random.uniform("result", day, idx, attempt),
            treatment,
        )
        return result, self._handle_time_s(
            idx, channel, result.outcome, result.conversation, attempt
        )

    def _apply_calls(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        hour: np.ndarray,
        result: ContactResult,
        duration: np.ndarray,
    ) -> None:
        self._record_attempts(idx, channel, hour, result.outcome, result.conversation, duration)
        self.model.excite(idx, channel, result.effective, result.reached, self.state, result.jump)
        self._after_conversation(idx, channel, hour, result.outcome, result.accepted)

    def _handle_time_s(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        outcome: np.ndarray,
        conversation: np.ndarray,
        attempt: int,
    ) -> np.ndarray:
        kind = np.where(
            conversation | (outcome >= Outcome.RIGHT_PARTY),
            3,
            np.where(
                outcome == Outcome.WRONG_PARTY, 2, np.where(outcome == Outcome.VOICEMAIL, 1, 0)
            ),
        )
        u = self.random.uniform("handle", self.day, idx, attempt)
        return self._handle_s[channel, kind] * (0.5 + u)

    def _agent_calls(
        self, idx: np.ndarray, hour: np.ndarray, priority: np.ndarray, shift: np.ndarray
    ) -> None:
        """Run the day's agent calls hour by hour through the pool's SimPy queue.

        Each centre hour offers, in order, the calls carried over from the previous
        hour, the calls planned for this hour (by plan priority) and redials of
        calls unanswered in the previous hour.  Every call passes the in-day
        compliance gate first.  A planned call an agent cannot start within its
        hour is carried once to the next hour, then dropped as overflow.
        """
        pool_cfg = self._call_pool
        agent_call = int(Channel.AGENT_CALL)
        zone_shift = shift[self.portfolio.timezone]
        centre = hour + zone_shift[idx]
        staffed = (
            []
            if pool_cfg is None
            else sorted(h for h, a in pool_cfg.agents_by_hour.items() if a > 0)
        )
        unstaffed = ~np.isin(centre, staffed)
        self._overflow(idx[unstaffed], agent_call, hour[unstaffed], "unstaffed")
        if pool_cfg is None:
            return
        pool = self._pools[pool_cfg.name]
        order = np.lexsort((idx, priority, centre))
        idx, centre = idx[order], centre[order]
        empty = np.zeros(0, dtype=np.int64)
        carried, redial, redial_attempt = empty, empty, empty
        for centre_hour in staffed:
            agents = pool_cfg.agents_by_hour[centre_hour]
            self.ledger.append(
                "agent_capacity",
                self.day,
                np.array([-1]),
                duration_s=agents * 3600.0,
                cost=agents * pool_cfg.cost_per_staffed_hour,
            )
            planned = idx[centre == centre_hour]
            batch = np.concatenate([carried, planned, redial])
            attempt = np.concatenate(
                [np.zeros(carried.size + planned.size, dtype=np.int64), redial_attempt]
            )
            was_carried = np.arange(batch.size) < carried.size
            local = centre_hour - zone_shift[batch]
            keep = self._hour_gate(batch, local, attempt > 0)
            batch, local, attempt, was_carried = (
                batch[keep],
                local[keep],
                attempt[keep],
                was_carried[keep],
            )
            channel = np.full(batch.size, agent_call, dtype=np.int64)
            drawn = [
                self._draw_calls(
                    batch[attempt == k], channel[attempt == k], local[attempt == k], int(k)
                )
                for k in np.unique(attempt)
            ]
            duration = np.zeros(batch.size)
            for k, (_, dur) in zip(np.unique(attempt), drawn, strict=True):
                duration[attempt == k] = dur
            started = pool.run_hour(
                self.day_index * 24.0 + centre_hour, centre_hour, duration
            ).started
            outcome = np.full(batch.size, -1, dtype=np.int8)
            for k, (result, dur) in zip(np.unique(attempt), drawn, strict=True):
                sel = attempt == k
                go = started[sel]
                self._apply_calls(
                    batch[sel][go], channel[sel][go], local[sel][go], result.rows(go), dur[go]
                )
                outcome[np.flatnonzero(sel)[go]] = result.outcome[go]
            late = ~started
            self._overflow(
                batch[late & was_carried],
                agent_call,
                local[late & was_carried],
                f"pool:{pool_cfg.name}",
            )
            carried = batch[late & ~was_carried & (attempt == 0)]
            unanswered = started & np.isin(outcome, (Outcome.NO_ANSWER, Outcome.VOICEMAIL))
            again = (
                unanswered
                & (attempt < self.scenario.sim.max_redials)
                & (self.state.status[batch] == ACTIVE)
            )
            redial, redial_attempt = batch[again], attempt[again] + 1
        if staffed:
            self._overflow(
                carried, agent_call, staffed[-1] + 1 - zone_shift[carried], f"pool:{pool_cfg.name}"
            )

    def _overflow(self, idx: np.ndarray, channel: int, hour: np.ndarray, resource: str) -> None:
        """Ledger planned contacts that did not fit their resource."""
        if idx.size:
            self.ledger.append(
                "overflow",
                self.day,
                idx,
                channel=channel,
                hour=hour,
                rule=self.ledger.rule_code(resource),
            )

    def _hour_gate(self, batch: np.ndarray, local: np.ndarray, redial: np.ndarray) -> np.ndarray:
        """In-day compliance gate before each hour's calls; returns the calls that may go.

        A refused planned call is a ``blocked`` event; a refused redial (the dialler's
        own retry after no answer, not part of the plan) is a ``redial_blocked`` event.
        """
        active = self.state.status[batch] == ACTIVE
        first = np.full(batch.size, -1, dtype=np.int16)
        channel = np.full(batch.size, Channel.AGENT_CALL, dtype=np.int64)
        first[active] = self.ruleset.first_violation(
            self.portfolio, self.window, batch[active], channel[active], local[active]
        )
        blocked = active & (first >= 0)
        if np.any(blocked):
            codes = np.array(
                [self.ledger.rule_code(r) for r in self.ruleset.rule_ids], dtype=np.int16
            )
            for event, rows in (
                ("blocked", blocked & ~redial),
                ("redial_blocked", blocked & redial),
            ):
                self.ledger.append(
                    event,
                    self.day,
                    batch[rows],
                    channel=int(Channel.AGENT_CALL),
                    hour=local[rows],
                    rule=codes[first[rows]],
                    bucket=bucket_of(self.portfolio.dpd[batch[rows]]),
                )
        return active & ~blocked

    def _letters(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        ch = np.full(idx.size, Channel.LETTER, dtype=np.int64)
        delivered = (
            self.random.uniform("deliver_letter", self.day, idx)
            >= self.model.not_delivered[Channel.LETTER]
        )
        outcome = np.where(delivered, Outcome.DELIVERED, Outcome.NOT_DELIVERED).astype(np.int8)
        self._record_attempts(
            idx, ch, np.full(idx.size, -1), outcome, np.zeros(idx.size, dtype=bool)
        )
        delay_h = self.scenario.channels["letter"].delay_days * 24.0
        self.post.send(idx[delivered], delay_h)

    def _legal(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        ch = np.full(idx.size, Channel.LEGAL, dtype=np.int64)
        self._record_attempts(
            idx,
            ch,
            np.full(idx.size, -1),
            np.full(idx.size, Outcome.DELIVERED, dtype=np.int8),
            np.zeros(idx.size, dtype=bool),
        )
        self.ledger.append(
            "legal_filed",
            self.day,
            idx,
            channel=int(Channel.LEGAL),
            cost=self.scenario.legal.cost_per_case,
        )
        self.state.status[idx] = LEGAL
        self.courts.file(idx)

    def _field_outcomes(self, idx: np.ndarray, hour: np.ndarray) -> None:
        if idx.size == 0:
            return
        self._calls(idx, np.full(idx.size, Channel.FIELD_VISIT, dtype=np.int64), hour, attempt=0)

    # ------------------------------------------------------------------ responses
    def _after_conversation(
        self,
        idx: np.ndarray,
        channel: np.ndarray,
        hour: np.ndarray,
        outcome: np.ndarray,
        accepted: np.ndarray | None = None,
    ) -> None:
        """Apply what borrowers agreed to in conversations (vectorised per outcome).

        Rows flagged in ``accepted`` took the offer of the day instead.
        """
        if accepted is not None and np.any(accepted):
            assert self._offer is not None
            self._accept_offers(
                idx[accepted],
                self._offer[idx[accepted]].astype(np.int64),
                channel[accepted],
                hour[accepted],
            )
            keep = ~accepted
            idx, channel, hour, outcome = idx[keep], channel[keep], hour[keep], outcome[keep]
        day = self.day
        conv = self.scenario.behaviour.conversation
        p, st = self.portfolio, self.state
        pay = idx[outcome == Outcome.PAYMENT]
        if pay.size:
            for c in np.unique(channel[outcome == Outcome.PAYMENT]):
                sel = (outcome == Outcome.PAYMENT) & (channel == c)
                self._pay_due(idx[sel], int(c), hour[sel], purpose="pay_now")
        promise = (outcome == Outcome.PROMISE_TO_PAY) & (st.status[idx] == ACTIVE)
        if np.any(promise):
            who = idx[promise]
            u = self.random.uniform("promise_days", day, who)
            p.promise_due_day[who] = day + 1 + (u * conv.promise_max_days).astype(np.int64)
            full = self.model.payment_is_full(who, self.random.uniform("promise_full", day, who))
            part = self.model.partial_fraction(who, self.random.uniform("promise_part", day, who))
            p.promise_amount[who] = np.round(
                np.where(full, p.amount_due[who], p.amount_due[who] * part), 2
            )
            self.contact.last_promise_day[who] = day
        plan = (
            (outcome == Outcome.PAYMENT_PLAN)
            & (st.status[idx] == ACTIVE)
            & (st.plan_remaining[idx] == 0)
        )
        if np.any(plan):
            who = idx[plan]
            st.plan_remaining[who] = conv.plan_instalments
            st.plan_next_day[who] = day + conv.plan_interval_days
            st.plan_amount[who] = np.round(p.amount_due[who] / conv.plan_instalments, 2)
            p.hardship_plan[who] = True
        dispute = idx[outcome == Outcome.DISPUTE]
        p.dispute_open[dispute] = True
        st.dispute_until[dispute] = day + conv.dispute_days
        p.cease_communication[idx[outcome == Outcome.CEASE_REQUEST]] = True

    def _accept_offers(
        self, idx: np.ndarray, offer: np.ndarray, channel: np.ndarray, hour: np.ndarray
    ) -> None:
        """Apply accepted offers (only those the account can still take are recorded)."""
        st = self.state
        cfg = self.treatments.config
        if idx.size == 0 or cfg is None:
            return
        active = st.status[idx] == ACTIVE
        free = st.plan_remaining[idx] == 0
        ok = active & ((offer == Offer.SETTLEMENT) | free)
        idx, offer, channel, hour = idx[ok], offer[ok], channel[ok], hour[ok]
        if idx.size == 0:
            return
        variant = np.zeros(idx.size, dtype=np.int8) if self._variant is None else self._variant[idx]
        self.ledger.append(
            "offer_accepted",
            self.day,
            idx,
            channel=channel,
            hour=hour,
            offer=offer,
            variant=variant,
            bucket=bucket_of(self.portfolio.dpd[idx]),
        )
        self._start_offered_plans(idx[offer == Offer.INSTALMENT_PLAN])
        settle = offer == Offer.SETTLEMENT
        for c in np.unique(channel[settle]):
            sel = settle & (channel == c)
            self._settle(idx[sel], int(c), hour[sel])
        holiday = idx[offer == Offer.PAYMENT_HOLIDAY]
        st.status[holiday] = HOLIDAY
        st.holiday_until[holiday] = self.day + cfg.payment_holiday.days
        self.portfolio.promise_due_day[holiday] = -1
        self.portfolio.promise_amount[holiday] = 0.0

    def _start_offered_plans(self, who: np.ndarray) -> None:
        """Instalment plans on the offer's terms (the payment-plan machinery)."""
        cfg = self.treatments.config
        if who.size == 0 or cfg is None:
            return
        st, p = self.state, self.portfolio
        terms = cfg.instalment_plan
        st.plan_remaining[who] = terms.instalments
        st.plan_next_day[who] = self.day + terms.interval_days
        st.plan_amount[who] = np.round(p.amount_due[who] / terms.instalments, 2)
        st.plan_interval[who] = terms.interval_days
        st.plan_keep_mult[who] = self.treatments.plan_keep_mult[self.latent.segment[who]]
        p.hardship_plan[who] = True
        p.promise_due_day[who] = -1
        p.promise_amount[who] = 0.0

    def _settle(self, idx: np.ndarray, channel: int, hour: np.ndarray) -> None:
        """Settlements: pay (1 - discount) × balance, record the discount, close."""
        cfg = self.treatments.config
        if idx.size == 0 or cfg is None:
            return
        p = self.portfolio
        balance = p.balance[idx]
        amount = np.round((1.0 - cfg.settlement.discount_fraction) * balance, 2)
        self._record_payment(idx, amount, channel, hour)
        self.ledger.append(
            "settlement",
            self.day,
            idx,
            channel=channel,
            amount=balance - amount,
            offer=int(Offer.SETTLEMENT),
            bucket=bucket_of(p.dpd[idx]),
        )
        p.balance[idx] = 0.0
        p.amount_due[idx] = 0.0
        p.promise_due_day[idx] = -1
        p.promise_amount[idx] = 0.0
        self._end_plan(idx[self.state.plan_remaining[idx] > 0])
        self.state.status[idx] = CLOSED

    def _pay_due(self, idx: np.ndarray, channel: int, hour: np.ndarray, purpose: str) -> None:
        """Payments of the amount due (full) or part of it, for accounts still active."""
        idx = idx[self.state.status[idx] == ACTIVE]
        hour = np.asarray(hour)[: idx.size] if np.ndim(hour) else hour
        if idx.size == 0:
            return
        full = self.model.payment_is_full(
            idx, self.random.uniform(f"{purpose}_full", self.day, idx)
        )
        fraction = self.model.partial_fraction(
            idx, self.random.uniform(f"{purpose}_part", self.day, idx)
        )
        due = self.portfolio.amount_due[idx]
        amount = np.round(np.where(full, due, due * fraction), 2)
        self._apply_payment(idx, amount, channel, hour)

    def _record_payment(
        self, idx: np.ndarray, amount: np.ndarray, channel: int, hour: np.ndarray | int
    ) -> None:
        positive = amount > 0
        if not np.any(positive):
            return
        hour_arr = np.broadcast_to(np.asarray(hour), idx.shape)
        self.ledger.append(
            "payment",
            self.day,
            idx[positive],
            channel=channel,
            hour=hour_arr[positive],
            outcome=int(Outcome.PAYMENT),
            amount=amount[positive],
            bucket=bucket_of(self.portfolio.dpd[idx[positive]]),
        )
        self._recovered += float(amount[positive].sum())

    def _apply_payment(
        self, idx: np.ndarray, amount: np.ndarray, channel: int, hour: np.ndarray | int
    ) -> None:
        """Book payments: reduce balance and amount due; an account paying its due is cured."""
        if idx.size == 0:
            return
        p = self.portfolio
        amount = np.minimum(amount, p.balance[idx])
        self._record_payment(idx, amount, channel, hour)
        p.balance[idx] -= amount
        p.amount_due[idx] = np.maximum(p.amount_due[idx] - amount, 0.0)
        cured = idx[(p.amount_due[idx] <= 0.005) & (self.state.status[idx] == ACTIVE)]
        self._cure(cured)

    def _cure(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        p = self.portfolio
        self.ledger.append("cure", self.day, idx, bucket=bucket_of(p.dpd[idx]))
        p.dpd[idx] = 0
        p.amount_due[idx] = 0.0
        p.promise_due_day[idx] = -1
        p.promise_amount[idx] = 0.0
        self._end_plan(idx[self.state.plan_remaining[idx] > 0])
        self.state.status[idx] = CURED
        self.state.cure_kind[idx] = CURE_PAYMENT

    def _daily_payments(self) -> None:
        """Payments from the repayment hazard (self-cure plus contact excitation)."""
        idx = np.flatnonzero(self.state.status == ACTIVE)
        if idx.size == 0:
            return
        on_plan = self.state.plan_remaining[idx] > 0
        idx = idx[~on_plan]
        prob = self.model.payment_probability(idx, self.portfolio.dpd[idx], self.state)
        pays = idx[self.random.uniform("pay", self.day, idx) < prob]
        self._pay_due(pays, -1, np.full(pays.size, -1), purpose="pay")

    # ------------------------------------------------------------------ end of day
    def _end_of_day(self) -> None:
        p, st, sim = self.portfolio, self.state, self.scenario.sim
        ages = np.flatnonzero((st.status == ACTIVE) & (st.plan_remaining == 0))
        before = bucket_of(p.dpd[ages])
        p.dpd[ages] += 1
        new_cycle = ages[p.dpd[ages] % sim.cycle_days == 0]
        due_fraction = self._due_fraction()
        p.amount_due[new_cycle] = np.round(
            np.minimum(
                p.balance[new_cycle],
                p.amount_due[new_cycle] + due_fraction[p.product[new_cycle]] * p.balance[new_cycle],
            ),
            2,
        )
        after = bucket_of(p.dpd[ages])
        rolled = after > before
        self.ledger.append("roll", self.day, ages[rolled], bucket=after[rolled])
        self._charge_off(ages[p.dpd[ages] >= sim.charge_off_dpd])

    def _charge_off(self, idx: np.ndarray) -> None:
        if idx.size == 0:
            return
        self.ledger.append(
            "charge_off", self.day, idx, amount=self.portfolio.balance[idx], bucket=5
        )
        self.state.status[idx] = CHARGED_OFF
        self.portfolio.promise_due_day[idx] = -1


def history_from_ledger(ledger: Ledger) -> History:
    """Return the contact attempts of a ledger as a History (local days and hours)."""
    c = ledger.columns()
    sel = c["event"] == EVENT["attempt"]
    channel = c["channel"][sel]
    outcome = c["outcome"][sel]
    return History(
        account=c["account"][sel].astype(np.int64),
        local_day=c["day"][sel].astype(np.int64),
        local_hour=np.maximum(c["hour"][sel], 0).astype(np.int8),
        channel=channel.astype(np.int8),
        outcome=outcome.astype(np.int8),
        conversation=IS_TELEPHONE[channel] & IS_CONVERSATION[outcome],
    )


__all__ = ["CURED", "DayStats", "PolicyError", "Simulation", "history_from_ledger"]
