"""Response models for model-based policies: value/uplift, repayment propensity, oracle.

* :mod:`.exploration` — exploration runs and their training logs (H-day net cash).
* :mod:`.value` — :class:`ValueModel` (uplift S-learner + hour multipliers),
  :class:`RepaymentModel`, ONNX export and onnxruntime predictors.
* :mod:`.oracle` — :class:`OracleValue`, the simulator's own expected values
  (research upper bound; never exported).
* :mod:`.training` — train a value model for a scenario, cached on disk as ONNX + JSON.
"""

from collsim.policies.models.exploration import ExplorationPolicy, TrainingLog, collect_log
from collsim.policies.models.value import (
    OnnxRepaymentModel,
    OnnxValueModel,
    RepaymentModel,
    ValueModel,
)

__all__ = [
    "ExplorationPolicy",
    "OnnxRepaymentModel",
    "OnnxValueModel",
    "RepaymentModel",
    "TrainingLog",
    "ValueModel",
    "collect_log",
]
