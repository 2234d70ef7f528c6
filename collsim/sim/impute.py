"""Latent traits for a real portfolio: draws from a scenario's borrowers who look alike.

A lender's account file holds what the lender sees (DPD, risk score, flags); the
simulator also needs what only the borrower knows (segment, ability, willingness,
answer rate, ...).  :func:`matched_draws` generates a pool of synthetic accounts
from the scenario and, for each real account, picks pool accounts that agree on what
the generator links to the latent traits:

* the DPD bucket (segment mixes differ by bucket),
* the hardship-plan flag and whether a telephone is on file (the hardship and
  unreachable segments set them),
* the risk score's quantile within that group (the score is a noisy function of
  ability and willingness); quantiles, not raw scores, so a lender's own score scale
  works.

The draws are a sample from the scenario's distribution of latent traits given
those observables, the prior used by the fit (simulated likelihood) and by the
back-test (one draw per replication).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario
from collsim.portfolio import Latent, Portfolio, generate
from collsim.vocab import bucket_of

POOL_ACCOUNTS = 200_000
"""Default number of synthetic accounts the draws are taken from."""

NEIGHBOURHOOD = 0.02
"""Half-width, as a share of the group, of the risk-score quantile window drawn from."""


@dataclass(frozen=True)
class LatentDraws:
    """K latent draws per account, as rows of one synthetic pool.

    Attributes:
        pool: the synthetic accounts' latent traits.
        rows: int64 [N, K] pool row of each account's k-th draw.
    """

    pool: Latent
    rows: np.ndarray

    @property
    def draws(self) -> int:
        """Number of draws per account (K)."""
        return int(self.rows.shape[1])

    def draw(self, k: int) -> Latent:
        """Return the k-th draw as one Latent aligned with the accounts."""
        return self.pool.take(self.rows[:, k])


def _groups(portfolio: Portfolio) -> np.ndarray:
    """int64 [N]: matching group of each account (bucket, hardship, phone on file)."""
    phone = portfolio.has_phone | portfolio.has_mobile
    bucket = np.asarray(bucket_of(portfolio.dpd), dtype=np.int64)
    return bucket * 4 + portfolio.hardship_plan.astype(np.int64) * 2 + phone.astype(np.int64)


def _quantiles(score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """float [N] in [0, 1): each score's mid-rank quantile within its group (NaN → 0.5)."""
    filled = np.where(np.isnan(score), np.inf, score)
    order = np.lexsort((filled, group))
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, group.shape[0]])
    first = np.repeat(starts, sizes)
    rank = np.arange(group.shape[0]) - first
    q = np.empty(group.shape[0])
    q[order] = (rank + 0.5) / np.repeat(sizes, sizes)
    return np.where(np.isnan(score), 0.5, q)


def _fallback_group(group: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Map groups absent from the pool to the same bucket with another flag combination."""
    result = group.copy()
    for g in np.unique(group[~np.isin(group, available)]):
        same_bucket = available[available // 4 == g // 4]
        candidates = same_bucket if same_bucket.size else available
        result[group == g] = candidates[np.argmin(np.abs(candidates - g))]
    return result


def matched_draws(
    scenario: Scenario,
    portfolio: Portfolio,
    rng: np.random.Generator,
    draws: int = 1,
    pool_accounts: int = POOL_ACCOUNTS,
) -> LatentDraws:
    """Draw latent traits for ``portfolio``'s accounts from look-alike synthetic borrowers.

    Args:
        scenario: whose borrower model the traits come from.
        portfolio: the real (or simulated) accounts.
        rng: the caller's generator (pool seed and the draws within each neighbourhood).
        draws: draws per account (K).
        pool_accounts: synthetic accounts generated to draw from.

    Returns:
        The pool and each account's K pool rows.
    """
    pool_portfolio, pool_latent = generate(
        scenario, int(rng.integers(2**31)), n_accounts=pool_accounts
    )
    pool_group = _groups(pool_portfolio)
    pool_q = _quantiles(pool_portfolio.risk_score, pool_group)
    group = _fallback_group(_groups(portfolio), np.unique(pool_group))
    q = _quantiles(portfolio.risk_score, group)
    order = np.lexsort((pool_q, pool_group))
    sorted_group = pool_group[order]
    starts = np.searchsorted(sorted_group, group, side="left")
    sizes = np.searchsorted(sorted_group, group, side="right") - starts
    jitter = rng.uniform(-NEIGHBOURHOOD, NEIGHBOURHOOD, size=(portfolio.n, draws))
    target = np.clip(q[:, None] + jitter, 0.0, 1.0 - 1e-12)
    offset = np.minimum((target * sizes[:, None]).astype(np.int64), sizes[:, None] - 1)
    return LatentDraws(pool=pool_latent, rows=order[starts[:, None] + offset])
