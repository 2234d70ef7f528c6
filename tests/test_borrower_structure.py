"""The structure of the evidence-calibrated borrower model (issue 15, item 1).

Each test checks one structural promise of :mod:`collsim.behaviour` on arrays built
by hand or on a generated population, independently of the scenario's numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from collsim.behaviour import (
    ACTIVE,
    CURE_PAYMENT,
    CURE_PLAN,
    CURED,
    BorrowerModel,
    BorrowerState,
    hour_profile,
)
from collsim.config import load_scenario
from collsim.ledger import EVENT
from collsim.policies.baselines import NoContact
from collsim.portfolio import generate
from collsim.sim import Simulation
from collsim.valuation import CURRENT, open_receivables
from collsim.vocab import BUCKETS, Channel, Outcome, bucket_of


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("default")


@pytest.fixture(scope="module")
def population(scenario):
    return generate(scenario, seed=3, n_accounts=20_000)


def model_of(scenario, latent, **behaviour):
    config = scenario.behaviour.model_copy(update=behaviour)
    return BorrowerModel(config, latent, None, scenario.sim.operating_hours)


@pytest.mark.parametrize("ratio", [1.0, 1.3, 2.0])
def test_hour_profile_is_mean_preserving_with_the_given_ratio(scenario, ratio) -> None:
    hours = np.asarray(scenario.sim.operating_hours)
    profile = hour_profile(scenario.behaviour.answer_by_hour, hours, ratio)
    assert profile[hours].mean() == pytest.approx(1.0)
    assert profile[hours].max() / profile[hours].min() == pytest.approx(ratio)


def test_population_answer_rate_by_hour_has_the_scenario_ratio(scenario, population) -> None:
    _, latent = population
    model = model_of(scenario, latent, answer_hour_ratio=1.3)
    idx = np.arange(latent.segment.size)
    state = BorrowerState.initial(idx.size)
    hours = np.asarray(scenario.sim.operating_hours)
    rate = np.array(
        [model.answer_probability(idx, np.full(idx.size, h), state).mean() for h in hours]
    )
    # The personal best hours average out: the population mean follows the profile
    # (up to the sample covariance of answer rates and best hours).
    expected = latent.answer_rate.mean() * model.hour_profile[hours]
    np.testing.assert_allclose(rate, expected, rtol=2e-3)
    assert rate.max() / rate.min() == pytest.approx(1.3, rel=2e-3)


def test_contact_cannot_create_ability(scenario, population) -> None:
    _, latent = population
    model = model_of(scenario, latent)
    idx = np.arange(200)
    latent_zero = latent.ability.copy()
    state = BorrowerState.initial(latent.segment.size)
    state.excitation[idx] = 5.0  # a very strong contact effect
    dpd = np.full(idx.size, 10)
    excited = model.payment_probability(idx, dpd, state)
    latent.ability[idx] = 0.0
    try:
        assert np.all(model.payment_probability(idx, dpd, state) == 0.0)
    finally:
        latent.ability[:] = latent_zero
    # With ability, the same excitation raises the probability of paying.
    assert np.all(
        excited > model.payment_probability(idx, dpd, BorrowerState.initial(latent.segment.size))
    )


def test_partial_payments_shrink_with_ability(scenario, population) -> None:
    _, latent = population
    model = model_of(scenario, latent)
    low, high = np.argmin(latent.ability), np.argmax(latent.ability)
    u = np.full(2, 0.5)
    fraction = model.partial_fraction(np.array([low, high]), u)
    assert fraction[0] < fraction[1]


def call(model, n, u_answer, u_party, channel=Channel.AGENT_CALL):
    idx = np.arange(n)
    state = BorrowerState.initial(n)
    return model.call(
        idx,
        np.full(n, channel),
        np.full(n, 18),
        state,
        np.full(n, u_answer),
        np.full(n, u_party),
        np.full(n, 0.999),
    )


def test_voicemail_gets_the_voicemail_jump_and_no_answer_nothing(scenario, population) -> None:
    _, latent = population
    model = model_of(scenario, latent, voicemail_jump=0.02)
    unanswered = call(model, 50, u_answer=1.0, u_party=0.9)  # not answered, voicemail
    assert np.all(unanswered.outcome == Outcome.VOICEMAIL)
    assert np.all(unanswered.effective) and np.all(unanswered.jump == 0.02)
    no_answer = call(model, 50, u_answer=1.0, u_party=0.1)
    assert np.all(no_answer.outcome == Outcome.NO_ANSWER)
    assert not np.any(no_answer.effective) and not np.any(no_answer.reached)
    answered = call(model, 50, u_answer=0.0, u_party=0.9)
    assert np.all(answered.conversation)
    assert np.all(answered.jump == model.jump[Channel.AGENT_CALL])


def test_bot_conversations_are_less_productive(scenario, population) -> None:
    _, latent = population
    response = latent.channel_response.copy()
    response[:, Channel.VOICE_BOT] = response[:, Channel.AGENT_CALL] = 1.0
    latent = dataclasses.replace(latent, channel_response=response)
    model = model_of(scenario, latent, bot_effectiveness=0.5)
    idx = np.arange(1000)
    state = BorrowerState.initial(latent.segment.size)
    human = model.conversation_probabilities(idx, np.full(idx.size, Channel.AGENT_CALL), state)
    bot = model.conversation_probabilities(idx, np.full(idx.size, Channel.VOICE_BOT), state)
    unnormalised = human[:, 7] > 1e-9  # the "no commitment" rest: not renormalised
    assert unnormalised.mean() > 0.5
    pay_promise = slice(0, 2)
    np.testing.assert_allclose(
        bot[unnormalised, pay_promise], 0.5 * human[unnormalised, pay_promise], rtol=1e-9
    )


def test_redefault_probability_follows_the_180_day_figure(scenario, population) -> None:
    _, latent = population
    model = model_of(scenario, latent)
    state = BorrowerState.initial(3)
    state.cure_kind[:] = [0, CURE_PAYMENT, CURE_PLAN]
    daily = model.redefault_probability(np.arange(3), state)
    within_180 = 1.0 - (1.0 - daily) ** 180
    cfg = scenario.behaviour.redefault_within_180d
    np.testing.assert_allclose(within_180, [0.0, cfg.after_payment, cfg.after_plan])


def test_cured_accounts_redefault_in_the_simulator(scenario) -> None:
    data = scenario.model_dump(mode="json")
    data["behaviour"]["redefault_within_180d"] = {"after_payment": 0.9, "after_plan": 0.9}
    data["sim"]["days"] = 20
    sim = Simulation(type(scenario).model_validate(data), 5, n_accounts=2000)
    sim.run(NoContact())
    c = sim.ledger.columns()
    again = c["event"] == EVENT["redefault"]
    assert again.sum() > 0
    cured_before = set()
    for day, account, event in zip(c["day"], c["account"], c["event"], strict=True):
        if event == EVENT["cure"]:
            cured_before.add(int(account))
        elif event == EVENT["redefault"]:
            assert int(account) in cured_before  # only a cured account re-defaults
            assert day > sim.first_day - 1
    assert np.all(c["bucket"][again] == 1)
    # A re-defaulted account is delinquent again: valued in its bucket, not as current.
    _, state = open_receivables(c)
    last_again = np.unique(c["account"][again])
    status_now = sim.state.status[last_again]
    delinquent = last_again[status_now == ACTIVE]
    assert np.all(state[delinquent] == bucket_of(sim.portfolio.dpd[delinquent]))
    assert np.all(state[last_again[status_now == CURED]] == CURRENT)


def test_segment_mix_follows_the_starting_bucket(scenario) -> None:
    portfolio, latent = generate(scenario, seed=1, n_accounts=40_000)
    names = [s.name for s in scenario.behaviour.segments]
    bucket = bucket_of(portfolio.dpd)
    for label, mix in scenario.behaviour.segment_shares_by_bucket.items():
        rows = bucket == BUCKETS.index(label)
        share = np.bincount(latent.segment[rows], minlength=len(names)) / rows.sum()
        expected = np.array([mix.get(name, 0.0) for name in names])
        np.testing.assert_allclose(share, expected / expected.sum(), atol=0.02)
