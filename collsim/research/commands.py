"""Research-side commands: fit a value model; export what needs training or distilling.

``collsim fit-value-model`` and ``collsim export`` call these functions; they return
exit codes like :mod:`collsim.export.commands` (0 success, 2 bad input) and leave the
artifact writing to it.  Training (exploration runs of the simulator, scikit-learn) and
distillation (simulating the policy) happen here, never in the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collsim.config import Scenario, load_scenario
from collsim.export import commands as core
from collsim.export.commands import (
    BAD_INPUT,
    EXIT_BAD_INPUT,
    EXIT_OK,
    NO_DISTILLATION,
    Distillation,
    error_lines,
    report,
)
from collsim.research.training import TrainingSettings, load_or_train


@dataclass(frozen=True)
class ValueTraining:
    """How ``collsim fit-value-model`` / ``export --policy optimised`` train the value model.

    Attributes:
        accounts: accounts per exploration run (default: the research default, 3,000).
        days: days per exploration run (default 90).
        seeds: number of exploration runs (default 3).
        retrain: train even if the model is in the cache.
    """

    accounts: int | None = None
    days: int | None = None
    seeds: int | None = None
    retrain: bool = False


def fitted_value_model(scenario: Scenario, training: ValueTraining) -> Path:
    """Fit (or load from the cache) the scenario's value model; return its ONNX path.

    The model is the one the ``optimised`` policy id uses in research
    (:func:`collsim.research.training.load_or_train`): exploration runs of the
    scenario, a :class:`~collsim.research.value.ValueModel` fitted on them and
    exported to ONNX with its JSON sidecar (never pickle).
    """
    default = TrainingSettings()
    settings = TrainingSettings(
        seeds=tuple(range(101, 101 + training.seeds)) if training.seeds else default.seeds,
        n_accounts=training.accounts or default.n_accounts,
        days=training.days or default.days,
    )
    if settings.days <= settings.horizon:
        raise ValueError(
            f"--train-days: {settings.days} must exceed the {settings.horizon}-day outcome horizon"
        )
    return load_or_train(scenario, settings, retrain=training.retrain).path


def _write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    from collsim.io import atomic_write

    def write(temp: Path) -> None:
        temp.write_bytes(data)

    atomic_write(path, write)


def fit_value_model(scenario: str, out: Path, training: ValueTraining, force: bool = False) -> int:
    """Write the scenario's value model as ``out`` (ONNX) and its ``.json`` sidecar.

    Returns:
        0 written, 2 bad input (unknown scenario, existing file without ``force``...).
    """
    try:
        if out.suffix != ".onnx":
            raise ValueError(f"--out {out}: the model file must end in .onnx")
        if not force and (out.exists() or out.with_suffix(".json").exists()):
            raise ValueError(f"--out {out}: exists; pass --force to replace it")
        model = fitted_value_model(load_scenario(scenario), training)
        for suffix in (".onnx", ".json"):
            _write_bytes_atomically(out.with_suffix(suffix), model.with_suffix(suffix).read_bytes())
    except BAD_INPUT as exc:
        report(error_lines(exc))
        return EXIT_BAD_INPUT
    print(f"wrote {out} and {out.with_suffix('.json').name} (value model of {scenario})")
    return EXIT_OK


def export_policy(
    policy: str,
    out: Path,
    scenario: str,
    *,
    distill: Distillation = NO_DISTILLATION,
    training: ValueTraining = ValueTraining(),
) -> int:
    """Export a policy as an artifact directory (``collsim export``).

    ``optimised`` first fits the scenario's value model (or loads it from the cache) and
    exports it as ``value_model`` named ``optimised``; every other spec goes to
    :func:`collsim.export.commands.export_policy` as is.  With ``distill.days`` the
    policy is simulated and a strategy tree distilled from it
    (:func:`collsim.research.distill.distill`).

    Args:
        policy: ``optimised`` or one of :data:`collsim.export.commands.POLICY_SPECS`.
        out: the artifact directory.
        scenario: bundled scenario name or YAML path.
        distill: whether and how a readable tree is distilled
            (:class:`collsim.export.commands.Distillation`).
        training: how ``optimised`` trains its value model.

    Returns:
        0 on success, 2 on bad input.
    """
    from collsim.research.distill import distill as distiller

    name = None
    if policy == "optimised":
        try:
            model = fitted_value_model(load_scenario(scenario), training)
        except BAD_INPUT as exc:
            report(error_lines(exc))
            return EXIT_BAD_INPUT
        policy, name = f"value_model:{model}", "optimised"
    return core.export_policy(
        policy,
        out,
        scenario,
        distill=distill,
        name=name,
        distiller=distiller,
    )


__all__ = [
    "ValueTraining",
    "export_policy",
    "fit_value_model",
    "fitted_value_model",
]
