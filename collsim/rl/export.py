"""Export a trained MaskablePPO to ONNX in the ``rl_onnx`` signature (research side: torch).

Graph (opset of the default torch exporter; needs ``onnxscript``)::

    inputs   obs     float32 [N, F]      collsim.features.FEATURE_NAMES
             mask    bool    [N, 1 + K]  column 0 = no contact
    outputs  action  int64   [N]         argmax of the masked logits (0 = no contact)
             score   float32 [N]         log-odds of that action over no contact
                                         (masked logit of the action − logit of no
                                         contact): the capacity priority, as RLPolicy's
                                         default ``priority="log_odds"``
             logits  float32 [N, 1 + K]  masked logits (-1e8 where not allowed),
                                         for HybridPolicy

With treatments as actions (a model trained on ``AccountBatch-v0(treatments=True)``),
``mask`` and ``logits`` are [N, A] over the model's
:class:`~collsim.policies.action_layout.ActionLayout`, whose JSON is stored in the graph's
metadata (key :data:`collsim.policies.onnx.LAYOUT_KEY`), so the runner decodes the same
(option, offer, variant) for each action.

The production runner of kind ``rl_onnx`` (:mod:`collsim.export.onnx_policies`) is
:class:`collsim.policies.rl.RLPolicy` over the ``logits`` output.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from collsim.config import Scenario
from collsim.features import FEATURE_NAMES
from collsim.plan import OptionSpace
from collsim.policies.action_layout import ActionLayout
from collsim.policies.onnx import LAYOUT_KEY

__all__ = [
    "ONNX_FILE",
    "export_artifact",
    "export_module_onnx",
    "export_onnx",
    "masked_policy_module",
]

ONNX_FILE = "policy.onnx"
MASKED_LOGIT = -1e8


def masked_policy_module(model: Any) -> Any:
    """Return a ``torch.nn.Module`` ``(obs, mask) -> (action, score, logits)`` of a MaskablePPO."""
    import torch

    class MaskedPolicy(torch.nn.Module):
        """The actor of a MaskablePPO with the mask and the argmax inside."""

        def __init__(self, policy: Any) -> None:
            super().__init__()
            self.features = policy.pi_features_extractor
            self.mlp = policy.mlp_extractor
            self.head = policy.action_net

        def forward(
            self, obs: torch.Tensor, mask: torch.Tensor
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            logits = self.head(self.mlp.forward_actor(self.features(obs)))
            masked = torch.where(mask, logits, torch.full_like(logits, MASKED_LOGIT))
            action = masked.argmax(dim=1)
            score = masked.gather(1, action[:, None])[:, 0] - masked[:, 0]
            return action, score, masked

    module = MaskedPolicy(model.policy)
    module.eval()
    return module


def export_onnx(model: Any, path: str | Path, layout: ActionLayout | None = None) -> Path:
    """Export a MaskablePPO's masked policy to ONNX with a dynamic batch axis.

    Args:
        model: a ``sb3_contrib.MaskablePPO`` (or a path to its ``.zip``).
        path: the ``.onnx`` file to write (written to a temporary name, then renamed).
        layout: the model's treatment action layout, stored in the graph's metadata
            (None: the plain ``1 + K`` actions).

    Returns:
        The path written.
    """
    from sb3_contrib import MaskablePPO

    if isinstance(model, (str, Path)):
        model = MaskablePPO.load(str(model), device="cpu")
    n_actions = int(model.action_space.n)
    if layout is not None and layout.n_actions != n_actions:
        raise ValueError(
            f"the model has {n_actions} actions, the treatment layout {layout.n_actions}: "
            "was it trained with treatments on this scenario?"
        )
    return export_module_onnx(masked_policy_module(model), n_actions, path, layout)


def export_module_onnx(
    module: Any, n_actions: int, path: str | Path, layout: ActionLayout | None = None
) -> Path:
    """Export a ``torch.nn.Module`` ``(obs, mask) -> (action, score, logits)`` to ONNX.

    The graph has the ``rl_onnx`` signature of this module's docstring, with a dynamic
    batch axis, and ``layout``'s JSON in its metadata if given; it is written to a
    temporary name, then renamed.

    Returns:
        The path written.
    """
    import torch

    from collsim.io import atomic_path

    n_features = len(FEATURE_NAMES)
    obs = torch.zeros((4, n_features), dtype=torch.float32)
    mask = torch.ones((4, n_actions), dtype=torch.bool)
    batch = torch.export.Dim("batch")
    path = Path(path)
    with atomic_path(path) as temp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (obs, mask),
            str(temp),
            input_names=["obs", "mask"],
            output_names=["action", "score", "logits"],
            dynamic_shapes={"obs": {0: batch}, "mask": {0: batch}},
            external_data=False,
            verbose=False,
        )
        if layout is not None:
            _store_layout(temp, layout)
    return path


def _store_layout(path: Path, layout: ActionLayout) -> None:
    """Add the layout's JSON to an ONNX file's metadata (``LAYOUT_KEY``), in place."""
    import onnx

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = LAYOUT_KEY, layout.to_json()
    onnx.save(graph, str(path))


def export_artifact(
    model: Any,
    out: str | Path,
    scenario: Scenario,
    name: str = "maskable_ppo",
    fallbacks: int = 0,
    treatments: bool = False,
) -> dict[str, Any]:
    """Export ``policy.onnx`` beside ``out`` and an ``rl_onnx`` artifact directory ``out``.

    ``model`` is a MaskablePPO (or its ``.zip``), or a ``torch.nn.Module`` already in the
    ``(obs, mask) -> (action, score, logits)`` signature (the offline policy of
    :mod:`collsim.rl.offline`).  The artifact is written by
    :func:`collsim.export.artifact.export_onnx_artifact` (signature check, checksums,
    manifest), so :func:`~collsim.export.artifact.load_artifact` loads it.  With
    ``fallbacks``, the production runner plans like
    ``RLPolicy(model, fallbacks=fallbacks)``.  With ``treatments`` the model was trained
    with treatments as actions: the graph carries the scenario's treatment layout
    (:meth:`ActionLayout.from_scenario`) and the runner plans the offers it chooses.

    Returns:
        The artifact manifest.
    """
    from collsim.export.artifact import OnnxPolicySettings, export_onnx_artifact

    out = Path(out)
    onnx_file = out.parent / ONNX_FILE
    layout = ActionLayout.from_scenario(scenario) if treatments else None
    if isinstance(model, (str, Path)) or hasattr(model, "action_space"):
        export_onnx(model, onnx_file, layout)
    else:  # a torch module in the rl_onnx signature (collsim.rl.offline)
        hours = np.asarray(scenario.sim.operating_hours, dtype=np.int64)
        export_module_onnx(model, 1 + OptionSpace(hours).n_options, onnx_file)
    settings = OnnxPolicySettings(name=name, fallbacks=fallbacks)
    return export_onnx_artifact(onnx_file, "rl_onnx", out, scenario, settings)


def onnx_actions(path: str | Path, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Run an exported graph (onnxruntime) and return its ``action`` output."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["action"], {"obs": obs, "mask": mask})[0])
