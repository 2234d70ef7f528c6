"""The simulation engine: one decision epoch a day, numpy for accounts, SimPy for queues.

Data flow of one simulated day::

    state -> Snapshot (compliance mask, capacity) -> Policy.decide -> Plan
    -> gate (compliance, budgets) -> messages and voice bot (numpy batches)
    -> agent calls hour by hour in SimPy (queues, handle times, redials, in-day gate)
    -> field visits, post and courts in SimPy -> borrower responses (numpy)
    -> payments, promises, plans, DPD, rolls, charge-off -> ledger events

All behavioural randomness comes from :class:`collsim.rng.RunRandom` keyed draws.

The day's work is done by the stages of :mod:`collsim.sim.stages` (functions of one
:class:`~collsim.sim.state.SimState`); :class:`Simulation` builds the state and calls
the stages in the fixed order documented there.

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

from collsim.behaviour import ACTIVE, CURED, BorrowerModel, BorrowerState
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
from collsim.sim.stages import ageing, contacts, gate, legal, money, post, responses
from collsim.sim.stages.gate import NOT_IN_COLLECTION, PolicyError
from collsim.sim.state import SimState
from collsim.snapshot import ObservedAccounts, build_snapshot
from collsim.treatments import TreatmentTables
from collsim.vocab import CHANNELS, IS_CONVERSATION, IS_TELEPHONE, bucket_of


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
        self._s = _initial_state(scenario, seed, ruleset, portfolio, latent, history)
        self._resources_cache: dict[tuple[int, ...], Resources] = {}
        self._snapshot: Snapshot | None = None
        self._mark = (0, 0.0, 0)
        self.policy_id: str | None = None  # the policy last given to step()
        self._latent_view = LatentView(self._s)
        self._start_events()

    # ------------------------------------------------------------------ state
    @property
    def scenario(self) -> Scenario:
        """The (scaled) scenario."""
        return self._s.scenario

    @property
    def random(self) -> RunRandom:
        """The run's keyed random streams."""
        return self._s.random

    @property
    def policy_rng(self) -> np.random.Generator:
        """The policy's generator (handed out in each Snapshot)."""
        return self._s.policy_rng

    @property
    def portfolio(self) -> Portfolio:
        """Observable account state."""
        return self._s.portfolio

    @property
    def latent(self) -> Latent:
        """Latent borrower parameters (never shown to policies)."""
        return self._s.latent

    @property
    def treatments(self) -> TreatmentTables:
        """Offer/variant effects and support."""
        return self._s.treatments

    @property
    def model(self) -> BorrowerModel:
        """The borrower response model."""
        return self._s.model

    @property
    def state(self) -> BorrowerState:
        """Behavioural state of the borrowers (status, plans, holidays)."""
        return self._s.borrowers

    @property
    def ruleset(self) -> RuleSet:
        """The compliance rule set (with the litigation floor)."""
        return self._s.ruleset

    @property
    def options(self) -> OptionSpace:
        """The (channel, slot) option space."""
        return self._s.options

    @property
    def first_day(self) -> int:
        """Day number of the first simulated day."""
        return self._s.first_day

    @property
    def day(self) -> int:
        """The current day number."""
        return self._s.day

    @property
    def window(self) -> ContactWindow:
        """The contact window the rules read."""
        return self._s.window

    @property
    def contact(self) -> ContactState:
        """The contact summary policies see."""
        return self._s.contact

    @property
    def ledger(self) -> Ledger:
        """The event ledger."""
        return self._s.ledger

    @property
    def env(self) -> simpy.Environment:
        """The SimPy environment (hours since the first midnight)."""
        return self._s.env

    @property
    def post(self) -> Post:
        """Letters in the post."""
        return self._s.post

    @property
    def courts(self) -> Courts:
        """Court cases and garnishment timers."""
        return self._s.courts

    @property
    def field(self) -> FieldTeam:
        """The field team."""
        return self._s.field

    @property
    def _garnish_amount(self) -> np.ndarray:
        """float [N] money per garnishment instalment."""
        return self._s.garnish_amount

    @property
    def _garnish_left(self) -> np.ndarray:
        """int64 [N] garnishment instalments still to come."""
        return self._s.garnish_left

    @property
    def sim_state(self) -> SimState:
        """The one mutable state the stages operate on."""
        return self._s

    @property
    def n(self) -> int:
        """Number of accounts."""
        return self._s.n

    @property
    def day_index(self) -> int:
        """Days simulated so far."""
        return self._s.day_index

    @property
    def latent_view(self) -> LatentView:
        """RESEARCH ONLY: the read-only view handed to LatentAware policies."""
        return self._latent_view

    # ------------------------------------------------------------------ public
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
        self._s.generation[idx] += 1
        self.portfolio.put(idx, portfolio)
        self.latent.put(idx, latent)
        fresh = BorrowerState.initial(idx.size)
        for f in dataclasses.fields(fresh):
            getattr(self._s.borrowers, f.name)[idx] = getattr(fresh, f.name)
        empty = ContactState.empty(idx.size)
        for f in dataclasses.fields(empty):
            getattr(self.contact, f.name)[idx] = getattr(empty, f.name)
        self.window.attempts[idx] = 0
        self.window.conversations[idx] = 0
        self._s.garnish_amount[idx] = 0.0
        self._s.garnish_left[idx] = 0
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
            active = self._s.borrowers.status[idx] == ACTIVE
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
        observed = ObservedAccounts(self.portfolio, self.contact, self.window, self.active())
        return build_snapshot(
            self.day, observed, self.ruleset, self.options, self.resources(), self.policy_rng
        )

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

        Environments call this and :meth:`finish_day` instead of :meth:`step`.  The
        morning stages run in the order documented in :mod:`collsim.sim.stages`.
        """
        if self.day > self.first_day:
            self.window.advance(self.day)
            self.model.decay(self.state)
        self._morning()
        self._snapshot = self.snapshot()
        self._mark = (self.ledger.mark(), self._s.recovered, self._s.attempts)
        return self._snapshot

    def finish_day(self, plan: Plan) -> DayStats:
        """Execute ``plan`` through the gate, the channels and the borrowers; end the day.

        The stages run in the order documented in :mod:`collsim.sim.stages`.
        """
        if self._snapshot is None:
            raise RuntimeError("finish_day() called without begin_day()")
        snapshot, self._snapshot = self._snapshot, None
        s = self._s
        gate.check_plan(s, plan)
        option = gate.contact_gate(s, plan, snapshot)
        gate.treatment_gate(s, plan, option)
        contacts.execute_plan(s, plan, option)
        s.offer = s.variant = None
        money.daily_payments(s)
        ageing.age_accounts(s)
        _, recovered_before, attempts_before = self._mark
        stats = DayStats(
            day=s.day,
            planned=int(plan.contacted().sum()),
            attempts=s.attempts - attempts_before,
            recovered=s.recovered - recovered_before,
        )
        s.day += 1
        return stats

    def day_events(self) -> dict[str, np.ndarray]:
        """The ledger rows since the current (or just finished) day's decision, as columns.

        The morning's events (post, judgments, promises and instalments due) come
        before the decision; they are in the previous call's window.  After
        ``ledger.clear()`` the window starts at the cleared ledger.
        """
        return self.ledger.since(min(self._mark[0], self.ledger.mark()))

    # ------------------------------------------------------------------ stages
    def _start_events(self) -> None:
        p = self.portfolio
        self.ledger.append(
            "start", self.day, np.arange(self.n), amount=p.balance, bucket=bucket_of(p.dpd)
        )
        for name in self.ruleset.rule_ids:
            self.ledger.rule_code(name)

    def _morning(self) -> None:
        """The morning stages, in order (see :mod:`collsim.sim.stages`)."""
        s = self._s
        s.run_clock(s.day_index * 24.0)
        post.letters_arrive(s)
        legal.judgments(s, s.courts.collect())
        legal.garnishments(s, s.courts.collect_instalments())
        money.holidays_end(s)
        ageing.redefaults(s)
        money.promises_due(s)
        money.instalments_due(s)
        responses.resolve_disputes(s)


def _initial_state(
    scenario: Scenario,
    seed: int,
    ruleset: str | RuleSet | None,
    portfolio: Portfolio | None,
    latent: Latent | None,
    history: History | None,
) -> SimState:
    """The state of a run before its first day."""
    random = RunRandom(seed)
    if portfolio is None or latent is None:
        portfolio, latent = generate(scenario, seed)
    portfolio = portfolio.copy()
    n = portfolio.n
    treatments = TreatmentTables.from_scenario(scenario, latent.segments)
    model = BorrowerModel(scenario.behaviour, latent, treatments, scenario.sim.operating_hours)
    rules = ruleset if isinstance(ruleset, RuleSet) else load_ruleset(ruleset or scenario.ruleset)
    first_day = day_number(scenario.sim.start_date)
    window = (
        ContactWindow.from_history(history, n, first_day)
        if history is not None
        else ContactWindow.empty(n, first_day)
    )
    policy_rng = random.generator("policy")
    env = simpy.Environment()
    pools = {
        p.name: AgentPool(env, p.name, dict(p.agents_by_hour))
        for p in scenario.capacity.agent_pools
    }
    call_pool = next((p for p in scenario.capacity.agent_pools if "agent_call" in p.channels), None)
    generation = np.zeros(n, dtype=np.int64)
    channels = [scenario.channels[c] for c in CHANNELS]
    kinds = ("no_answer", "voicemail", "wrong_party", "conversation")
    return SimState(
        scenario=scenario,
        random=random,
        policy_rng=policy_rng,
        portfolio=portfolio,
        latent=latent,
        treatments=treatments,
        model=model,
        borrowers=BorrowerState.initial(n),
        ruleset=with_legal_floor(rules, scenario.legal.min_dpd),
        options=OptionSpace(np.asarray(scenario.sim.operating_hours, dtype=np.int64)),
        first_day=first_day,
        day=first_day,
        window=window,
        contact=ContactState.empty(n),
        ledger=Ledger(valuation=scenario.valuation),
        env=env,
        pools=pools,
        call_pool=call_pool,
        generation=generation,
        post=Post(env, generation),
        courts=Courts(env, scenario.legal.duration_days * 24.0, generation),
        field=FieldTeam(env, scenario.sim.field_agents, scenario.sim.field_visit_hours),
        garnish_amount=np.zeros(n),
        garnish_left=np.zeros(n, dtype=np.int64),
        cost_per_attempt=np.array([c.cost_per_attempt for c in channels]),
        cost_per_minute=np.array([c.cost_per_minute for c in channels]),
        handle_s=np.array([[c.handle_time_s.get(k, 0.0) for k in kinds] for c in channels]),
    )


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


__all__ = [
    "CURED",
    "NOT_IN_COLLECTION",
    "DayStats",
    "PolicyError",
    "Simulation",
    "history_from_ledger",
]
