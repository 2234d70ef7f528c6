"""Response models at decide-time (onnxruntime only; fitted on the research side).

* :mod:`.value` — :class:`OnnxValueModel` and :class:`OnnxRepaymentModel`, the ONNX
  exports of the value and repayment models (fitted by :mod:`collsim.research.value`).
* :mod:`.treatment` — treatment codes, support, pruning and :class:`TreatmentChooser`
  (the effect model it reads is fitted by :mod:`collsim.research.treatment`).
"""

from collsim.policies.models.value import OnnxRepaymentModel, OnnxValueModel

__all__ = ["OnnxRepaymentModel", "OnnxValueModel"]
