"""Identification checks for ``collsim fit``: logs from a known, perturbed scenario.

:func:`perturbed_scenario` moves the numbers a fit estimates by random factors (the
segment-level ones by one factor per attribute, as the fit estimates them);
:func:`identification_run` simulates logs from it under a randomised logging policy
with a holdout, fits them against the unperturbed base and reports how the
intervals cover the truth.  The test suite runs a small case and
``benchmarks/fit_identification.py`` the full one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario
from collsim.evaluation.logging import LoggingPolicy
from collsim.logs import Logs
from collsim.policies.baselines import RandomPolicy
from collsim.research.fit import SEGMENT_CAPS, Coverage, FitOptions, coverage, fit_logs
from collsim.sim import Simulation
from collsim.sim.logs import LogRecorder, simulated_logs

SEGMENT_ATTRIBUTES = ("answer_rate", "self_cure_hazard", "promise_keep", "complaint_rate")
"""Segment attributes moved by one common factor each."""

SCALAR_PATHS = (
    "wrong_party_rate",
    "not_delivered_rate.sms",
    "not_delivered_rate.email",
    "not_delivered_rate.app_push",
    "field_found_rate",
    "answer_hour_ratio",
    "conversation.pay_now",
    "conversation.promise",
    "conversation.plan",
    "conversation.refusal",
    "bot_effectiveness",
    "jump.agent_call",
    "jump.voice_bot",
    "jump.sms",
    "link_payment",
    "hazard_dpd_scale_days",
)
"""Behaviour numbers (paths under ``behaviour``) moved one by one."""

_CAPS = {**SEGMENT_CAPS, "bot_effectiveness": 1.0}


def _scale(node: dict, key: str, factor: float) -> None:
    node[key] = min(node[key] * factor, _CAPS.get(key, math.inf))


def perturbed_scenario(base: Scenario, rng: np.random.Generator, spread: float = 0.25) -> Scenario:
    """Return ``base`` with every fitted number times ``exp(U(-spread, spread))``.

    Args:
        base: the scenario to perturb.
        rng: the draws of the factors.
        spread: half-width of the log-uniform factors.
    """
    data = base.model_dump(mode="json")
    behaviour = data["behaviour"]
    for attribute in SEGMENT_ATTRIBUTES:
        factor = math.exp(rng.uniform(-spread, spread))
        for segment in behaviour["segments"]:
            _scale(segment, attribute, factor)
    for path in SCALAR_PATHS:
        *parents, leaf = path.split(".")
        node = behaviour
        for part in parents:
            node = node[part]
        _scale(node, leaf, math.exp(rng.uniform(-spread, spread)))
    data["name"] = f"{base.name}_perturbed"
    return Scenario.model_validate(data)


@dataclass(frozen=True)
class IdentificationResult:
    """How one fit's intervals covered the scenario that made its logs."""

    truth: Scenario
    fitted: Scenario
    rows: list[Coverage]

    @property
    def covered_share(self) -> float:
        """Share of fitted numbers whose 95% interval holds the true value."""
        return float(np.mean([row.inside() for row in self.rows])) if self.rows else 0.0


def identification_logs(
    base: Scenario, seed: int, size: tuple[int, int] = (6000, 45)
) -> tuple[Scenario, Logs]:
    """Logs simulated from a perturbed ``base``: (the true scenario, its logs).

    The logging policy contacts half the accounts a day at random (channel and hour
    uniform over what the rules allow) and holds out 10% as a control.

    Args:
        base: the scenario to perturb.
        seed: seeds the perturbation and the simulation.
        size: (accounts, days) of the simulated logs.
    """
    streams = np.random.SeedSequence(seed).spawn(2)
    truth = perturbed_scenario(base, np.random.default_rng(streams[0]))
    accounts, days = size
    sim = Simulation(truth, int(streams[1].generate_state(1)[0]), n_accounts=accounts)
    recorder = LogRecorder(sim)
    policy = LoggingPolicy(RandomPolicy(contact_rate=0.5), holdout_share=0.1)
    sim.run(recorder.wrap(policy), days, progress=lambda _stats: recorder.end_of_day())
    return truth, simulated_logs(recorder)


def identification_run(
    base: Scenario,
    seed: int,
    size: tuple[int, int] = (6000, 45),
    options: FitOptions | None = None,
) -> IdentificationResult:
    """Simulate logs from a perturbed ``base``, fit them against ``base``, compare.

    Args:
        base: the base scenario (the fit's starting point).
        seed: seeds the perturbation, the simulation and the fit.
        size: (accounts, days) of the simulated logs (:func:`identification_logs`).
        options: the fit's options (its seed is replaced by ``seed``).
    """
    truth, logs = identification_logs(base, seed, size)
    settings = vars(options) if options is not None else {}
    fitted = fit_logs(logs, base, FitOptions(**{**settings, "seed": seed}))
    return IdentificationResult(truth, fitted, coverage(fitted, truth))
