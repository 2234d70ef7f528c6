"""Typed policy params of experiment specs and value-model training (issue 16)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from pydantic import ValidationError

from collsim.evaluation.spec import ExperimentSpec, PolicySpec
from collsim.policies.params import (
    ChampionParams,
    HybridParams,
    NoParams,
    RandomParams,
    RLParams,
    TrainingParams,
    UnknownPolicyParams,
    ValueModelParams,
    ValuePolicyParams,
    params_model,
)
from collsim.research.training import TrainingSettings
from collsim.research.value import ValueModel


def spec(params: dict[str, object], policy_id: str = "random") -> ExperimentSpec:
    policies = [{"label": "challenger", "id": policy_id, "params": params}]
    return ExperimentSpec.model_validate(
        {"name": "x", "baseline": "challenger", "policies": policies}
    )


@pytest.mark.parametrize(
    ("policy_id", "model"),
    [
        ("no_contact", NoParams),
        ("oracle", NoParams),
        ("random", RandomParams),
        ("champion", ChampionParams),
        ("greedy", ValuePolicyParams),
        ("optimised", ValuePolicyParams),
        ("rl:runs/a/best_model.zip", RLParams),
        ("hybrid:runs/a/policy.onnx", HybridParams),
        ("trees/champion_light_touch.yaml", NoParams),
        ("no_such_policy", UnknownPolicyParams),
    ],
)
def test_each_kind_has_its_params_model(policy_id: str, model: type) -> None:
    assert params_model(policy_id) is model
    assert type(PolicySpec(label="p", id=policy_id).params) is model


def test_a_typo_names_the_policy_and_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        spec({"contact_rat": 0.1})
    assert "policy 'challenger' (random): params.contact_rat: Extra inputs" in str(caught.value)
    with pytest.raises(ValidationError, match=r"params\.training\.model_params\.max_iters"):
        spec({"training": {"model_params": {"max_iters": 5}}}, "optimised")
    with pytest.raises(ValidationError, match=r"params\.priority: Input should be"):
        spec({"priority": "loud"}, "rl:model.zip")


def test_params_dump_as_written() -> None:
    """Only the fields set are dumped: spec hashes and cell keys are unchanged."""
    training = {"seeds": [7], "n_accounts": 300, "model_params": {"max_iter": 20}}
    loaded = spec({"training": training}, "optimised")
    params = loaded.policies[0].params
    assert isinstance(params, ValuePolicyParams) and params.training.seeds == (7,)
    assert loaded.model_dump(mode="json")["policies"][0]["params"] == {"training": training}
    assert params.kwargs() == {"training": {**training, "seeds": (7,)}}
    assert spec({}).policies[0].params.kwargs() == {}


def test_training_params_mirror_training_settings() -> None:
    settings = {f.name: f.default for f in dataclasses.fields(TrainingSettings)}
    assert set(TrainingParams.model_fields) == set(settings)
    for name, field in TrainingParams.model_fields.items():
        if name != "model_params":
            assert field.default == settings[name], name


def test_value_model_params_mirror_the_value_model() -> None:
    signature = inspect.signature(ValueModel.__init__).parameters
    defaults = {name: p.default for name, p in signature.items() if name not in ("self",)}
    assert set(ValueModelParams.model_fields) == set(defaults) - {"random_state"}
    assert ValueModelParams().model_dump() == {}  # unset fields are not dumped
    for name, field in ValueModelParams.model_fields.items():
        assert field.default == defaults[name], name


def test_training_settings_validate_model_params() -> None:
    settings = TrainingSettings(model_params={"max_iter": 60})  # type: ignore[arg-type]
    assert settings.model_params == ValueModelParams(max_iter=60)
    assert settings.model_params.kwargs() == {"max_iter": 60}
    with pytest.raises(ValidationError, match="max_iters"):
        TrainingSettings(model_params={"max_iters": 60})  # type: ignore[arg-type]
