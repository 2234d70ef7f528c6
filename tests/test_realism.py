"""Issue 15: the risk score's discrimination, message hazards and the legal pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from collsim.config import load_scenario
from collsim.portfolio import generate, risk_score_noise, score_auc


def _badness(latent) -> np.ndarray:  # type: ignore[no-untyped-def]
    return 1.0 - latent.ability * latent.willingness


@pytest.mark.parametrize("scenario", ["default", "cn_consumer_finance"])
@pytest.mark.parametrize("auc", [0.65, 0.72, 0.80])
def test_risk_score_auc_matches_the_parameter(scenario: str, auc: float) -> None:
    s = load_scenario(scenario).with_overrides(
        {"portfolio.risk_score_auc": auc, "portfolio.n_accounts": 30_000}
    )
    portfolio, latent = generate(s, seed=3)
    assert score_auc(portfolio.risk_score, _badness(latent)) == pytest.approx(auc, abs=0.02)


def test_a_better_score_has_less_noise_and_the_bundled_scenarios_target_a_collection_score() -> None:
    s = load_scenario("default")
    assert s.portfolio.risk_score_auc is not None and 0.70 <= s.portfolio.risk_score_auc <= 0.75
    noise = [
        risk_score_noise(s.with_overrides({"portfolio.risk_score_auc": a})) for a in (0.6, 0.7, 0.9)
    ]
    assert noise[0] > noise[1] > noise[2] > 0.0


def test_without_an_auc_the_noise_parameter_is_used() -> None:
    s = load_scenario("default").with_overrides(
        {"portfolio.risk_score_auc": None, "portfolio.risk_score_noise": 0.0}
    )
    portfolio, latent = generate(s, seed=1, n_accounts=5_000)
    np.testing.assert_allclose(portfolio.risk_score, np.round(_badness(latent), 4))
    assert score_auc(portfolio.risk_score, _badness(latent)) > 0.99
