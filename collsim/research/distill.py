"""Distil any policy into a strategy tree a TieredChampion can run (research side).

:func:`distill` simulates the policy, records each active account's decision
(channel and slot, or none) with its observable ``dpd``, ``balance`` and
``risk_score``, fits a scikit-learn ``DecisionTreeClassifier`` on them and turns each
leaf into a tier of a :class:`~collsim.policies.champion.StrategyTree`:

* ``when``: the leaf's box of dpd / balance / risk ranges (inclusive; dpd splits
  ``x <= t`` become ``[.., floor(t)]`` and ``[floor(t) + 1, ..]``);
* ``ladder``: the leaf's majority channel, then the other channels seen in the leaf
  by weight (fallbacks); ``[]`` (leave alone) when the majority is no contact;
* ``slots``: the majority slot, then the other slots seen, by weight;
* ``cadence_days``: 1 (the features carry no contact recency).

Both leaf conversions (majority decision, or contacted decisions with a per-leaf
cadence matching the leaf's contact rate) are replayed; the one with the higher
fidelity is returned.  Fidelity is the share of identical decisions (channel and slot) over active
accounts when the distilled tree is replayed, through a TieredChampion with the same
masks and capacity, on every recorded snapshot.

Needs the simulator (SimPy) and scikit-learn; production never imports this module.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collsim.config import Scenario, load_scenario
from collsim.plan import Plan, Policy, Snapshot
from collsim.policies.champion import Condition, StrategyTree, Tier, TieredChampion
from collsim.vocab import CHANNELS, IS_TIMED

FEATURES = ("dpd", "balance", "risk_score")
_HOURS = 25  # label = (channel + 1) * 25 + (hour + 1)
_DECIMALS = {1: 2, 2: 4}  # thresholds rounded: balance to cents, risk to 4 decimals


def _freeze(snapshot: Snapshot) -> Snapshot:
    """Return a copy of a snapshot that later simulated days cannot change."""
    return dataclasses.replace(
        snapshot,
        accounts=snapshot.accounts.copy(),
        contact=dataclasses.replace(
            snapshot.contact,
            **{
                f.name: getattr(snapshot.contact, f.name).copy()
                for f in dataclasses.fields(snapshot.contact)
            },
        ),
        active=snapshot.active.copy(),
        mask=snapshot.mask.copy(),
        rng=np.random.default_rng(0),
    )


@dataclass
class Recorder:
    """Wraps a policy; keeps each day's frozen snapshot and the decisions made."""

    policy: Policy
    snapshots: list[Snapshot] = field(default_factory=list)
    decisions: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    policy_id: str = ""

    def __post_init__(self) -> None:
        self.policy_id = self.policy.policy_id

    def decide(self, snapshot: Snapshot) -> Plan:
        """Decide with the wrapped policy and record."""
        plan = self.policy.decide(snapshot)
        self.snapshots.append(_freeze(snapshot))
        self.decisions.append((plan.channel.copy(), plan.slot_hour.copy()))
        return plan


def features_of(snapshot: Snapshot) -> np.ndarray:
    """float64 [N, 3]: dpd, balance, risk score (unknown risk = 0.5, as the champion)."""
    a = snapshot.accounts
    return np.column_stack([a.dpd, a.balance, np.nan_to_num(a.risk_score, nan=0.5)]).astype(float)


def label_of(channel: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """int label of (channel, slot hour) decisions; none = 0."""
    channel = np.asarray(channel, dtype=np.int64)
    return np.where(channel < 0, 0, (channel + 1) * _HOURS + np.asarray(hour, np.int64) + 1)


def _decode(label: int) -> tuple[int, int]:
    return label // _HOURS - 1, label % _HOURS - 1


def dataset(recorder: Recorder) -> tuple[np.ndarray, np.ndarray]:
    """Return (X [M, 3], label [M]) over the active accounts of every recorded day."""
    xs, ys = [], []
    for snapshot, (channel, hour) in zip(recorder.snapshots, recorder.decisions, strict=True):
        active = snapshot.active
        xs.append(features_of(snapshot)[active])
        ys.append(label_of(channel, hour)[active])
    return np.concatenate(xs), np.concatenate(ys)


def _bounds_to_condition(bounds: dict[int, list[float | None]]) -> Condition:
    low, high = bounds[0]
    dpd = (None if low is None else int(low), None if high is None else int(high))
    return Condition(
        dpd=dpd, balance=(bounds[1][0], bounds[1][1]), risk=(bounds[2][0], bounds[2][1])
    )


def _split(
    bounds: dict[int, list[float | None]], feature: int, threshold: float, left: bool
) -> dict[int, list[float | None]]:
    out = {k: list(v) for k, v in bounds.items()}
    if feature == 0:  # integer dpd
        cut = math.floor(threshold)
        out[0][1 if left else 0] = cut if left else cut + 1
    else:
        out[feature][1 if left else 0] = (
            threshold if left else float(np.nextafter(threshold, np.inf))
        )
    return out


def _tier(
    name: str,
    classes: np.ndarray,
    weights: np.ndarray,
    bounds: dict[int, list[float | None]],
    cadence: bool,
) -> Tier:
    """One leaf as a tier.

    With ``cadence`` False the leaf's majority decides (none → leave alone); with
    ``cadence`` True the ladder lists the contacted decisions by weight and
    ``cadence_days`` ≈ 1 / (share of contacts in the leaf), up to 7.
    """
    order = np.argsort(-weights, kind="stable")
    labels = [int(classes[i]) for i in order if weights[i] > 0]
    decoded = [_decode(label) for label in labels]
    total = float(weights.sum())
    contacted = float(sum(weights[i] for i in order if weights[i] > 0 and classes[i] != 0))
    share = contacted / total if total else 0.0
    if cadence:
        decoded = [d for d in decoded if d[0] >= 0] if share >= 0.05 else []
    ladder: list[str] = []
    slots: list[int] = []
    if decoded and decoded[0][0] >= 0:
        for channel, hour in decoded:
            if channel >= 0 and CHANNELS[channel] not in ladder and len(ladder) < 3:
                ladder.append(CHANNELS[channel])
            if channel >= 0 and IS_TIMED[channel] and hour >= 0 and hour not in slots:
                slots.append(hour)
    days = int(min(7, max(1, round(1.0 / share)))) if cadence and share > 0 else 1
    extra: dict[str, Any] = {"slots": slots} if slots else {}
    return Tier(
        name=name, when=_bounds_to_condition(bounds), ladder=ladder, cadence_days=days, **extra
    )


def tree_from_classifier(classifier: Any, tree_id: str, cadence: bool = False) -> StrategyTree:
    """Convert a fitted DecisionTreeClassifier on (dpd, balance, risk) into a StrategyTree.

    Args:
        classifier: the fitted classifier (labels from :func:`label_of`).
        tree_id: the distilled policy's id (names the tree).
        cadence: leaf conversion mode (see :func:`_tier`).
    """
    t = classifier.tree_
    tiers: list[Tier] = []
    start: dict[int, list[float | None]] = {0: [None, None], 1: [None, None], 2: [None, None]}
    stack = [(0, start)]
    while stack:
        node, bounds = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == right:  # leaf
            weights = np.asarray(t.value[node][0], dtype=float)
            tiers.append(_tier(f"leaf{len(tiers)}", classifier.classes_, weights, bounds, cadence))
            continue
        feature, threshold = int(t.feature[node]), float(t.threshold[node])
        stack.append((right, _split(bounds, feature, threshold, left=False)))
        stack.append((left, _split(bounds, feature, threshold, left=True)))
    mode = "contact cadence per leaf" if cadence else "majority decision per leaf"
    description = f"distilled from {tree_id} on {', '.join(FEATURES)} ({mode})"
    tree_name = f"distilled_{tree_id}".replace(":", "_")
    return StrategyTree(id=tree_name, description=description, tiers=tiers)


def fidelity(tree: StrategyTree, recorder: Recorder) -> float:
    """Share of identical (channel, slot) decisions over active accounts on replay."""
    replay = TieredChampion(tree)
    same = total = 0
    for snapshot, (channel, hour) in zip(recorder.snapshots, recorder.decisions, strict=True):
        plan = replay.decide(snapshot)
        active = snapshot.active
        equal = (plan.channel == channel) & (plan.slot_hour == hour)
        same += int(np.count_nonzero(equal & active))
        total += int(np.count_nonzero(active))
    return same / total if total else 1.0


def distill(
    policy: Policy,
    scenario: Scenario | str,
    seed: int,
    days: int,
    max_depth: int,
    n_accounts: int | None = None,
) -> tuple[StrategyTree, float]:
    """Simulate ``policy``, fit a decision tree on its decisions, return (tree, fidelity).

    Args:
        policy: any policy.
        scenario: a Scenario or a bundled name / YAML path.
        seed: simulation seed and the classifier's ``random_state``.
        days: days simulated.
        max_depth: maximum depth of the tree (at most ``2**max_depth`` tiers).
        n_accounts: portfolio size (default: the scenario's).
    """
    from sklearn.tree import DecisionTreeClassifier

    from collsim.sim import Simulation

    scen = load_scenario(scenario) if isinstance(scenario, str) else scenario
    recorder = Recorder(policy)
    Simulation(scen, seed, n_accounts=n_accounts).run(recorder, days)
    x, y = dataset(recorder)
    classifier = DecisionTreeClassifier(max_depth=max_depth, random_state=seed, min_samples_leaf=5)
    classifier.fit(x, y)
    candidates = [tree_from_classifier(classifier, policy.policy_id, c) for c in (False, True)]
    scored = [(fidelity(tree, recorder), i) for i, tree in enumerate(candidates)]
    best, index = max(scored)
    return candidates[index], best


__all__ = ["FEATURES", "Recorder", "dataset", "distill", "fidelity", "tree_from_classifier"]
