"""portfolio_value (collsim.valuation) and agents paid per staffed hour."""

from __future__ import annotations

import numpy as np
import pytest

from collsim.config import ConfigError, Scenario, ValuationConfig, load_scenario
from collsim.ledger import EVENT, Ledger
from collsim.metrics import kpis
from collsim.policies.baselines import NoContact
from collsim.sim import Simulation
from collsim.valuation import (
    account_portfolio_values,
    open_receivables,
    portfolio_value_parts,
)
from collsim.vocab import Channel, Outcome

RATES = {
    "current": 0.9,
    "1-30": 0.7,
    "31-60": 0.5,
    "61-90": 0.3,
    "91-180": 0.2,
    "charged_off": 0.04,
    "legal_pending": 0.15,
    "garnishing": 1.0,
}
VALUATION = ValuationConfig(
    npv_rate_annual=0.10, complaint_cost=500.0, terminal_recovery_by_bucket=RATES
)
DAY0 = 100


def _f(days: float) -> float:
    return float(1.1 ** (-days / 365.0))


def _start(ledger: Ledger, account: int, balance: float, bucket: int, day: int = DAY0) -> None:
    ledger.append("start", day, np.array([account]), amount=balance, bucket=bucket)


def _one(ledger: Ledger, event: str, day: int, account: int, **columns: float | int) -> None:
    ledger.append(event, day, np.array([account]), **columns)


def tiny_ledger() -> Ledger:
    """Nine account lives whose value is computed by hand in the test below."""
    ledger = Ledger(valuation=VALUATION)
    _start(ledger, 0, 1000.0, 1)
    _start(ledger, 1, 500.0, 4)
    _start(ledger, 2, 300.0, 1)
    _start(ledger, 3, 1000.0, 1)
    _start(ledger, 4, 400.0, 3)
    _start(ledger, 5, 600.0, 4)
    _start(ledger, 6, 1000.0, 4)
    _start(ledger, 7, 100.0, 1)
    _one(ledger, "agent_capacity", DAY0, -1, duration_s=3600.0, cost=45.0)
    _one(
        ledger,
        "attempt",
        DAY0,
        0,
        channel=int(Channel.AGENT_CALL),
        outcome=int(Outcome.COMPLAINT),
        cost=1.0,
    )
    _one(ledger, "legal_filed", DAY0 + 1, 3, cost=350.0)  # sued at 1-30 DPD
    _one(ledger, "legal_filed", DAY0 + 1, 5, cost=350.0)
    _one(ledger, "legal_filed", DAY0 + 1, 6, cost=350.0)
    _one(ledger, "payment", DAY0 + 5, 2, amount=100.0)
    _one(ledger, "cure", DAY0 + 5, 2, bucket=1)
    _one(ledger, "payment", DAY0 + 10, 0, amount=200.0)
    _one(ledger, "payment", DAY0 + 10, 4, amount=280.0)
    _one(ledger, "settlement", DAY0 + 10, 4, amount=120.0)
    _one(ledger, "charge_off", DAY0 + 10, 7, amount=100.0, bucket=5)
    _start(ledger, 7, 50.0, 1, day=DAY0 + 11)  # the row gets a new account
    _one(ledger, "charge_off", DAY0 + 20, 1, amount=500.0, bucket=5)
    _one(ledger, "legal_closed", DAY0 + 20, 5, outcome=int(Outcome.REFUSAL))
    _one(ledger, "legal_closed", DAY0 + 20, 6, outcome=int(Outcome.PAYMENT), amount=600.0)
    _one(ledger, "payment", DAY0 + 20, 6, amount=100.0, channel=int(Channel.LEGAL))
    _one(ledger, "charge_off", DAY0 + 20, 5, amount=600.0, bucket=5)
    _one(ledger, "roll", DAY0 + 29, 0, bucket=2)
    return ledger


def test_portfolio_value_of_a_tiny_ledger_by_hand() -> None:
    ledger = tiny_ledger()
    cash = 100 * _f(5) + 200 * _f(10) + 280 * _f(10) + 100 * _f(20)
    cost = 45.0 + 1.0 + 3 * 350.0 * _f(1)
    complaints = 500.0
    open_value = (
        800 * 0.5  # 0: paid 200, rolled to 31-60
        + 500 * 0.04  # 1: charged off
        + 200 * 0.9  # 2: paid 100 and cured: current
        + 1000 * 0.15  # 3: legal pending
        + 0.0  # 4: settled: closed
        + 600 * 0.04  # 5: lost in court, charged off
        + 500.0  # 6: won in court, 600 awarded, 100 garnished so far
        + 100 * 0.04  # 7, first account: charged off
        + 50 * 0.7  # 7, second account: 1-30
    )
    terminal = open_value * _f(30)  # horizon: the day after day 129
    parts = portfolio_value_parts(ledger)
    assert parts["npv_recovered"] == pytest.approx(cash)
    assert parts["npv_cost"] == pytest.approx(cost)
    assert parts["complaint_cost"] == pytest.approx(complaints)
    assert parts["terminal_value"] == pytest.approx(terminal)
    assert parts["portfolio_value"] == pytest.approx(cash - cost - complaints + terminal)
    values = kpis(ledger)
    assert values["portfolio_value"] == pytest.approx(parts["portfolio_value"])
    assert values["total_cost"] == pytest.approx(45.0 + 1.0 + 3 * 350.0)
    assert values["agent_cost"] == 45.0 and values["legal_cost"] == 3 * 350.0
    assert values["net_recovery"] == pytest.approx(680.0 - (45.0 + 1.0 + 3 * 350.0))


def test_account_values_add_up_to_portfolio_value() -> None:
    ledger = tiny_ledger()
    per_account = account_portfolio_values(ledger, 8)
    assert per_account.shape == (8,)
    assert per_account.sum() == pytest.approx(portfolio_value_parts(ledger)["portfolio_value"])
    # account 4 settled: cash only, less its share of the staffed hour
    assert per_account[4] == pytest.approx(280 * _f(10) - 45.0 / 8)


def test_open_receivables_are_per_account_life_in_ledger_order() -> None:
    balance, state = open_receivables(tiny_ledger().columns())
    assert balance.tolist() == [800.0, 500.0, 200.0, 1000.0, 0.0, 600.0, 500.0, 100.0, 50.0]
    assert state.tolist() == [2, 5, 0, 6, 7, 5, 8, 5, 1]


def _ledger_with(final_event: str | None) -> Ledger:
    ledger = Ledger(valuation=VALUATION)
    _start(ledger, 0, 1000.0, 4)
    _one(ledger, "payment", DAY0 + 3, 0, amount=100.0)
    if final_event == "charge_off":
        _one(ledger, "charge_off", DAY0 + 9, 0, amount=900.0, bucket=5)
    elif final_event == "legal_filed":
        _one(ledger, "legal_filed", DAY0 + 9, 0, cost=350.0)
    _one(ledger, "agent_capacity", DAY0 + 9, -1, duration_s=3600.0)  # same horizon
    return ledger


def test_charge_off_and_an_early_suit_lower_value_at_the_same_cash() -> None:
    kept = kpis(_ledger_with(None))
    written_off = kpis(_ledger_with("charge_off"))
    sued = kpis(_ledger_with("legal_filed"))
    assert written_off["amount_recovered"] == kept["amount_recovered"] == 100.0
    assert written_off["net_recovery"] == kept["net_recovery"]  # cash only: no difference
    assert written_off["portfolio_value"] < kept["portfolio_value"]
    assert sued["portfolio_value"] < kept["portfolio_value"]
    loss = (900.0 * (0.2 - 0.04)) * _f(10)
    assert kept["portfolio_value"] - written_off["portfolio_value"] == pytest.approx(loss)


def test_without_a_valuation_portfolio_value_is_net_recovery() -> None:
    ledger = tiny_ledger()
    ledger.valuation = None
    values = kpis(ledger)
    assert values["portfolio_value"] == pytest.approx(values["net_recovery"])


def test_staffed_agent_hours_are_charged_and_handle_minutes_are_not() -> None:
    scenario = load_scenario("default")
    days = 3
    sim = Simulation(scenario, seed=2, n_accounts=300)
    sim.run(NoContact(), days)
    pool = sim.scenario.capacity.agent_pools[0]
    staffed_hours = days * sum(pool.agents_by_hour.values())
    values = kpis(sim.ledger)
    assert pool.cost_per_staffed_hour == 45.0
    assert values["agent_cost"] == pytest.approx(staffed_hours * pool.cost_per_staffed_hour)
    assert values["total_cost"] == pytest.approx(values["agent_cost"])  # nobody was contacted
    assert values["portfolio_value"] < values["npv_recovered"] + values["terminal_value"]


def test_agent_calls_cost_their_telecom_price_only() -> None:
    from collsim.policies.registry import make_policy

    scenario = load_scenario("default")
    sim = Simulation(scenario, seed=1, n_accounts=400)
    sim.run(make_policy("champion", scenario), 5)
    c = sim.ledger.columns()
    calls = (c["event"] == EVENT["attempt"]) & (c["channel"] == int(Channel.AGENT_CALL))
    assert calls.any() and np.all(c["duration_s"][calls] > 0)
    assert np.allclose(c["cost"][calls], scenario.channels["agent_call"].cost_per_attempt)
    values = kpis(sim.ledger)
    assert 0 < values["agent_occupancy"] == values["agent_utilisation"] < 1


def test_an_agent_pool_cannot_be_paid_per_hour_and_per_minute() -> None:
    scenario = load_scenario("default")
    with pytest.raises(ConfigError, match="paid twice"):
        scenario.with_overrides({"channels.agent_call.cost_per_minute": 0.5})
    data = scenario.model_dump(mode="json")
    data["capacity"]["agent_pools"][0]["cost_per_staffed_hour"] = 0.0
    data["channels"]["agent_call"]["cost_per_minute"] = 0.5
    assert Scenario.model_validate(data).channels["agent_call"].cost_per_minute == 0.5


def test_valuation_needs_every_terminal_state() -> None:
    with pytest.raises(ValueError, match="legal_pending"):
        ValuationConfig(
            terminal_recovery_by_bucket={k: v for k, v in RATES.items() if k != "legal_pending"}
        )


def test_ledger_and_simulator_agree_on_every_open_account() -> None:
    """The ledger reading of the horizon state equals the simulator's own state."""
    from collsim.policies.registry import make_policy
    from collsim.valuation import GARNISHING, LEGAL_PENDING, account_values, state_of
    from collsim.valuation import terminal_value as value_of

    scenario = load_scenario("default")
    sim = Simulation(scenario, seed=4, n_accounts=1500)
    sim.run(make_policy("champion", scenario), 75)
    balance, state = open_receivables(sim.ledger.columns())
    live_state = state_of(sim.state.status, sim.portfolio.dpd)
    garnishing = (live_state == LEGAL_PENDING) & (sim._garnish_left > 0)
    live_state[garnishing] = GARNISHING
    assert np.any(state == GARNISHING) and np.any(state == LEGAL_PENDING)
    assert np.array_equal(state, live_state)
    from_ledger = value_of(balance, state, scenario.valuation)
    np.testing.assert_allclose(from_ledger, account_values(sim), atol=0.05)
