"""Account state as columns (a struct of numpy arrays) and synthetic generation.

:class:`Portfolio` holds what the lender knows about each account (every column of
the portfolio file in docs/input_formats.md, plus dynamic collection state).  :class:`Latent`
holds what only the simulator knows (segment, ability, willingness, answering
profile, channel responsiveness).  Policies never receive a :class:`Latent`.

Loading a real portfolio file lives in :mod:`collsim.tables`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario
from collsim.rng import RunRandom
from collsim.vocab import BUCKETS, CHANNELS, N_CHANNELS, Channel, bucket_of

FLAG_COLUMNS: tuple[str, ...] = (
    "has_phone",
    "has_mobile",
    "has_email",
    "has_app",
    "has_address",
    "consent_autodial",
    "sms_opt_out",
    "email_opt_out",
    "cease_communication",
    "dispute_open",
    "hardship_plan",
    "vulnerable",
)
"""Boolean columns of the portfolio file, in file order."""


@dataclass
class Portfolio:
    """Observable state of N accounts, one numpy array per column.

    Attributes mirror the portfolio file (docs/input_formats.md).  ``timezone`` is a code
    into ``timezones`` (a tuple of IANA names); ``product`` a code into
    ``products``.  ``promise_due_day`` is a day number (days since 1970-01-01,
    local calendar) or -1 for no open promise.
    """

    account_id: np.ndarray  # object (str)
    product: np.ndarray  # int16 code into products
    products: tuple[str, ...]
    balance: np.ndarray  # float64, currency units
    amount_due: np.ndarray  # float64, currency units
    dpd: np.ndarray  # int32, days past due
    timezone: np.ndarray  # int16 code into timezones
    timezones: tuple[str, ...]
    has_phone: np.ndarray
    has_mobile: np.ndarray
    has_email: np.ndarray
    has_app: np.ndarray
    has_address: np.ndarray
    consent_autodial: np.ndarray
    sms_opt_out: np.ndarray
    email_opt_out: np.ndarray
    cease_communication: np.ndarray
    dispute_open: np.ndarray
    hardship_plan: np.ndarray
    vulnerable: np.ndarray
    risk_score: np.ndarray  # float64 in [0, 1]; NaN when unknown
    promise_due_day: np.ndarray  # int32 day number, -1 = none
    promise_amount: np.ndarray  # float64, 0 when none
    segment_label: np.ndarray  # object (str), the lender's own label ("" if none)

    @property
    def n(self) -> int:
        """Number of accounts."""
        return int(self.account_id.shape[0])

    def reachable(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Return bool [N, channels]: whether each channel can reach each account.

        Args:
            rows: optional int [M] account rows: return [M, channels] for those only.
        """

        def flag(name: str) -> np.ndarray:
            value: np.ndarray = getattr(self, name)
            return value if rows is None else value[rows]

        reach = np.empty((self.n if rows is None else len(rows), N_CHANNELS), dtype=bool)
        has_mobile, has_address = flag("has_mobile"), flag("has_address")
        phone = flag("has_phone") | has_mobile
        reach[:, Channel.AGENT_CALL] = phone
        reach[:, Channel.VOICE_BOT] = phone
        reach[:, Channel.SMS] = has_mobile
        reach[:, Channel.EMAIL] = flag("has_email")
        reach[:, Channel.APP_PUSH] = flag("has_app")
        reach[:, Channel.LETTER] = has_address
        reach[:, Channel.FIELD_VISIT] = has_address
        reach[:, Channel.LEGAL] = has_address
        return reach

    def take(self, index: np.ndarray) -> Portfolio:
        """Return a new Portfolio with the rows at ``index`` (copies)."""
        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[index] if isinstance(value, np.ndarray) else value
        return Portfolio(**values)

    def copy(self) -> Portfolio:
        """Return a deep copy."""
        return self.take(np.arange(self.n))

    def put(self, index: np.ndarray, rows: Portfolio) -> None:
        """Overwrite the rows at ``index`` with ``rows`` (same code tables), in place."""
        _put(self, index, rows, ("products", "timezones"))


@dataclass
class Latent:
    """Latent traits known only to the simulator (never in a Snapshot)."""

    segment: np.ndarray  # int8 code into segments
    segments: tuple[str, ...]
    ability: np.ndarray  # float64 in (0, 1)
    willingness: np.ndarray  # float64 in (0, 1)
    answer_rate: np.ndarray  # float64, P(answer at best hour)
    best_hour: np.ndarray  # int8, local hour of best answering
    open_rate: np.ndarray  # float64
    channel_response: np.ndarray  # float64 [N, channels]
    complaint_rate: np.ndarray  # float64
    promise_keep: np.ndarray  # float64
    plan_keep: np.ndarray  # float64
    self_cure_hazard: np.ndarray  # float64, per day at DPD 1

    def put(self, index: np.ndarray, rows: Latent) -> None:
        """Overwrite the rows at ``index`` with ``rows``, in place."""
        _put(self, index, rows, ("segments",))

    def take(self, index: np.ndarray) -> Latent:
        """Return a new Latent with the rows at ``index``."""
        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[index] if isinstance(value, np.ndarray) else value
        return Latent(**values)


def _put(target: object, index: np.ndarray, rows: object, tables: tuple[str, ...]) -> None:
    for name in tables:
        if getattr(target, name) != getattr(rows, name):
            raise ValueError(f"cannot put rows with different {name}")
    for f in dataclasses.fields(target):  # type: ignore[arg-type]
        value = getattr(target, f.name)
        if isinstance(value, np.ndarray):
            value[index] = getattr(rows, f.name)


def day_number(date: dt.date) -> int:
    """Return days since 1970-01-01 for a calendar date."""
    return (date - dt.date(1970, 1, 1)).days


def date_of(day: int) -> dt.date:
    """Return the calendar date of a day number."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def _beta(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    return rng.beta(mean * concentration, (1.0 - mean) * concentration)


def _choice(rng: np.random.Generator, shares: dict[str, float], n: int) -> np.ndarray:
    weights = np.array(list(shares.values()), dtype=float)
    return rng.choice(len(weights), size=n, p=weights / weights.sum())


_AUC_SAMPLE = 200_000
"""Accounts in the fixed-seed sample that calibrates the risk score's noise."""


def score_auc(risk_score: np.ndarray, badness: np.ndarray) -> float:
    """AUC of a risk score for bad accounts: hidden badness above its median.

    Args:
        risk_score: the lender's score (higher = riskier).
        badness: the hidden badness ``1 - ability × willingness``.

    Returns:
        P(score of a bad account > score of a good one), ties counting one half.
    """
    from scipy import stats  # research-side: synthetic portfolios only (production loads files)

    bad = badness > np.median(badness)
    ranks = stats.rankdata(risk_score)
    n_bad, n_good = int(bad.sum()), int((~bad).sum())
    if n_bad == 0 or n_good == 0:
        return 0.5
    return float((ranks[bad].sum() - n_bad * (n_bad + 1) / 2.0) / (n_bad * n_good))


def _noisy_score(badness: np.ndarray, z: np.ndarray, noise: float) -> np.ndarray:
    return np.round(np.clip(badness + noise * z, 0.0, 1.0), 4)


@functools.lru_cache(maxsize=16)
def _noise_for_auc(segments: tuple[tuple[float, float, float], ...], auc: float) -> float:
    """Score noise sd giving ``auc`` on a fixed-seed sample of the segments' borrowers.

    Args:
        segments: (share, mean ability, mean willingness) of each segment.
        auc: target AUC in (0.5, 1).
    """
    rng = np.random.default_rng(20_260_415)
    share = np.array([s[0] for s in segments])
    segment = rng.choice(len(segments), size=_AUC_SAMPLE, p=share / share.sum())
    ability = _beta(rng, np.array([s[1] for s in segments])[segment], 8.0)
    willingness = _beta(rng, np.array([s[2] for s in segments])[segment], 8.0)
    badness = 1.0 - ability * willingness
    z = rng.standard_normal(_AUC_SAMPLE)

    def gap(noise: float) -> float:
        return score_auc(_noisy_score(badness, z, noise), badness) - auc

    if gap(0.0) <= 0.0:
        return 0.0
    from scipy import optimize  # research-side: synthetic portfolios only

    return float(optimize.brentq(gap, 0.0, 10.0, xtol=1e-4))


def risk_score_noise(scenario: Scenario) -> float:
    """The sd of the lender's risk-score noise: solved from ``risk_score_auc`` if given."""
    cfg = scenario.portfolio
    if cfg.risk_score_auc is None:
        return cfg.risk_score_noise
    segments = tuple((s.share, s.ability, s.willingness) for s in scenario.behaviour.segments)
    return _noise_for_auc(segments, cfg.risk_score_auc)


def _initial_dpd(rng: np.random.Generator, scenario: Scenario, n: int) -> np.ndarray:
    names = list(scenario.portfolio.initial_dpd_bucket_shares)
    bucket = _choice(rng, scenario.portfolio.initial_dpd_bucket_shares, n)
    low = np.array([int(BUCKETS[BUCKETS.index(b)].split("-")[0]) for b in names])
    high = np.array([int(BUCKETS[BUCKETS.index(b)].split("-")[1]) for b in names])
    return rng.integers(low[bucket], high[bucket] + 1).astype(np.int32)


def _segments(rng: np.random.Generator, scenario: Scenario, dpd: np.ndarray) -> np.ndarray:
    """int8 [N]: each account's latent segment, drawn from its starting bucket's mix.

    ``behaviour.segment_shares_by_bucket`` gives the mix of a bucket (accounts deep in
    delinquency are the ones that did not cure); other buckets use the segments' shares.
    """
    segments = scenario.behaviour.segments
    names = [s.name for s in segments]
    shares = np.tile([s.share for s in segments], (len(BUCKETS), 1)).astype(float)
    for bucket, mix in scenario.behaviour.segment_shares_by_bucket.items():
        shares[BUCKETS.index(bucket)] = [mix.get(name, 0.0) for name in names]
    cumulative = np.cumsum(shares / shares.sum(axis=1, keepdims=True), axis=1)
    u = rng.random((dpd.shape[0],))
    row = cumulative[np.asarray(bucket_of(dpd), dtype=np.int64)]
    return np.minimum((u[:, None] >= row).sum(axis=1), len(names) - 1).astype(np.int8)


def generate(
    scenario: Scenario, seed: int, n_accounts: int | None = None
) -> tuple[Portfolio, Latent]:
    """Generate a synthetic delinquent portfolio and its latent traits.

    Args:
        scenario: the scenario whose ``portfolio`` and ``behaviour`` sections are used.
        seed: run seed; the ``population`` stream of :class:`~collsim.rng.RunRandom` is used.
        n_accounts: overrides ``scenario.portfolio.n_accounts``.

    Returns:
        (portfolio, latent), both with N rows in account-id order.
    """
    cfg = scenario.portfolio
    n = int(n_accounts or cfg.n_accounts)
    rng = RunRandom(seed).generator("population")

    seg_cfg = scenario.behaviour.segments
    dpd = _initial_dpd(rng, scenario, n)
    segment = _segments(rng, scenario, dpd)

    def per_segment(attribute: str) -> np.ndarray:
        return np.array([getattr(s, attribute) for s in seg_cfg], dtype=float)[segment]

    ability = _beta(rng, per_segment("ability"), 8.0)
    willingness = _beta(rng, per_segment("willingness"), 8.0)
    response = np.ones((len(seg_cfg), N_CHANNELS))
    for i, s in enumerate(seg_cfg):
        for channel, multiplier in s.channel_response.items():
            response[i, CHANNELS.index(channel)] = multiplier
    channel_response = response[segment] * rng.lognormal(0.0, 0.3, size=(n, N_CHANNELS))
    latent = Latent(
        segment=segment,
        segments=tuple(s.name for s in seg_cfg),
        ability=ability,
        willingness=willingness,
        answer_rate=np.clip(per_segment("answer_rate") * rng.lognormal(0.0, 0.3, n), 0, 1),
        best_hour=np.clip(np.rint(rng.normal(18.0, 2.5, n)), 8, 21).astype(np.int8),
        open_rate=np.clip(per_segment("open_rate") * rng.lognormal(0.0, 0.3, n), 0, 1),
        channel_response=channel_response,
        complaint_rate=per_segment("complaint_rate") * rng.lognormal(0.0, 0.5, n),
        promise_keep=_beta(rng, np.clip(per_segment("promise_keep"), 0.01, 0.99), 10.0),
        plan_keep=_beta(rng, np.clip(per_segment("plan_keep"), 0.01, 0.99), 10.0),
        self_cure_hazard=per_segment("self_cure_hazard") * rng.lognormal(0.0, 0.3, n),
    )

    product_names = tuple(cfg.products)
    product = _choice(rng, {k: v.share for k, v in cfg.products.items()}, n).astype(np.int16)
    median = np.array([p.balance.median for p in cfg.products.values()])[product]
    sigma = np.array([p.balance.sigma for p in cfg.products.values()])[product]
    balance = np.round(median * np.exp(sigma * rng.standard_normal(n)), 2)
    due_fraction = np.array([p.due_fraction for p in cfg.products.values()])[product]
    cycles = 1 + dpd // scenario.sim.cycle_days
    amount_due = np.round(np.minimum(balance, balance * due_fraction * cycles), 2)

    zone_names = tuple(cfg.timezones)
    timezone = _choice(rng, cfg.timezones, n).astype(np.int16)
    flags = {name: rng.random(n) < p for name, p in cfg.reach.items()}
    # Unreachable-segment borrowers have stale contact data.
    unreachable = np.array([s.name == "unreachable" for s in seg_cfg])[segment]
    flags["has_phone"] &= ~(unreachable & (rng.random(n) < 0.7))
    flags["has_mobile"] &= ~(unreachable & (rng.random(n) < 0.7))
    hardship = np.array([s.name == "hardship" for s in seg_cfg])[segment]
    true_risk = 1.0 - ability * willingness
    risk_score = _noisy_score(true_risk, rng.standard_normal(n), risk_score_noise(scenario))

    portfolio = Portfolio(
        account_id=np.array([f"A{i:08d}" for i in range(n)], dtype=object),
        product=product,
        products=product_names,
        balance=balance,
        amount_due=amount_due,
        dpd=dpd,
        timezone=timezone,
        timezones=zone_names,
        has_phone=flags["has_phone"],
        has_mobile=flags["has_mobile"],
        has_email=flags["has_email"],
        has_app=flags["has_app"],
        has_address=flags["has_address"],
        consent_autodial=rng.random(n) < cfg.consent_autodial,
        sms_opt_out=rng.random(n) < cfg.sms_opt_out,
        email_opt_out=rng.random(n) < cfg.email_opt_out,
        cease_communication=rng.random(n) < cfg.cease_communication,
        dispute_open=rng.random(n) < cfg.dispute_open,
        hardship_plan=(rng.random(n) < cfg.hardship_plan) & hardship,
        vulnerable=rng.random(n) < cfg.vulnerable,
        risk_score=risk_score,
        promise_due_day=np.full(n, -1, dtype=np.int32),
        promise_amount=np.zeros(n),
        segment_label=np.array([""] * n, dtype=object),
    )
    return portfolio, latent


@dataclass
class ContactState:
    """Per-account summary of recent contact, observable by policies.

    Day numbers are local calendar days; -1 means never.
    """

    last_contact_day: np.ndarray
    last_rpc_day: np.ndarray
    last_promise_day: np.ndarray
    attempts_7d: np.ndarray  # int16 [N, channels], attempts on days D-7..D-1
    rpc_7d: np.ndarray  # int16 [N]
    broken_promises: np.ndarray  # int16 [N]

    @classmethod
    def empty(cls, n: int) -> ContactState:
        """Return the state of N accounts never contacted."""
        never = np.full(n, -1, dtype=np.int32)
        return cls(
            last_contact_day=never.copy(),
            last_rpc_day=never.copy(),
            last_promise_day=never.copy(),
            attempts_7d=np.zeros((n, N_CHANNELS), dtype=np.int16),
            rpc_7d=np.zeros(n, dtype=np.int16),
            broken_promises=np.zeros(n, dtype=np.int16),
        )


__all__ = [
    "FLAG_COLUMNS",
    "ContactState",
    "Latent",
    "Portfolio",
    "date_of",
    "day_number",
    "generate",
    "risk_score_noise",
    "score_auc",
]
