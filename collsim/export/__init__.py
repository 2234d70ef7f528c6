"""Export: policy artifacts, daily plan files, manifests and their loaders for production.

Modules:

* :mod:`collsim.export.reader` — :func:`read_plan` and :class:`PlanError` (pyarrow only);
* :mod:`collsim.export.planfile` — :func:`write_plan` (with :class:`PlanDay` and
  :class:`PlanWriteOptions`): the plan table and its manifest;
* :mod:`collsim.export.artifact` — policy artifacts: :func:`export_tree_artifact`,
  :func:`export_onnx_artifact`, :func:`load_artifact` (checksums, no pickle);
* :mod:`collsim.export.onnx_policies` — the runners of the ``rl_onnx`` and ``value_model``
  kinds: the simulation's own ``RLPolicy`` and ``OptimisedAllocation``;
* :mod:`collsim.export.daily` — a day's Snapshot from the files, holdout, priorities;
* :mod:`collsim.export.planread` — a plan file back into a :class:`collsim.plan.Plan`;
* :mod:`collsim.export.commands` — ``export``, ``plan`` and ``validate-plan`` as functions
  returning exit codes.

Only the reader is imported eagerly, so ``from collsim.export import read_plan`` needs
nothing but pyarrow; the other names load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from collsim.export.reader import PLAN_SCHEMA, SCHEMA_VERSION, PlanError, read_plan

_LAZY = {
    "write_plan": "collsim.export.planfile",
    "plan_table": "collsim.export.planfile",
    "PlanDay": "collsim.export.planfile",
    "PlanWriteOptions": "collsim.export.planfile",
    "ArtifactError": "collsim.export.artifact",
    "ArtifactPolicy": "collsim.export.artifact",
    "export_tree_artifact": "collsim.export.artifact",
    "export_onnx_artifact": "collsim.export.artifact",
    "load_artifact": "collsim.export.artifact",
    "export_policy": "collsim.export.commands",
    "make_plan": "collsim.export.commands",
    "validate_plan_files": "collsim.export.commands",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'collsim.export' has no attribute {name!r}")


__all__ = ["PLAN_SCHEMA", "SCHEMA_VERSION", "PlanError", "read_plan", *_LAZY]
