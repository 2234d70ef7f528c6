"""MaskablePPO models as :class:`collsim.policies.rl.LogitModel` (research side: torch).

The core runner :class:`collsim.policies.rl.RLPolicy` needs only onnxruntime; a
trained MaskablePPO (or its ``.zip``) reaches it through this module::

    from collsim.policies.rl import RLPolicy
    from collsim.rl.logits import load_logit_model

    policy = RLPolicy(load_logit_model("best_model.zip"), fallbacks=8)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from collsim.policies import rl as core
from collsim.policies.rl import CHUNK, MASKED_LOGIT, LogitModel

__all__ = ["LAYOUT_FILE", "TorchLogits", "load_logit_model"]

LAYOUT_FILE = "action_layout.json"
"""File beside a training run's ``.zip`` models holding their action layout (treatments)."""


def _layout_beside(path: Path) -> str | None:
    """The :data:`LAYOUT_FILE` in a model's folder or the folder above (checkpoints/)."""
    for folder in (path.parent, path.parent.parent):
        if (folder / LAYOUT_FILE).is_file():
            return (folder / LAYOUT_FILE).read_text(encoding="utf-8")
    return None


class TorchLogits:
    """Masked logits of a MaskablePPO model (torch; CPU, no gradients).

    Args:
        model: a ``sb3_contrib.MaskablePPO`` or a path to its ``.zip``.
        action_layout: the model's action layout JSON if it was trained with treatments
            as actions (default: for a ``.zip``, the :data:`LAYOUT_FILE` of its folder or
            of the folder above, as ``collsim train --treatments`` writes; else none).

    Attributes:
        name: the ``.zip`` file name ("model" for a loaded model), for policy ids.
        action_layout: the layout JSON (None: plain actions).
    """

    def __init__(self, model: Any, action_layout: str | None = None) -> None:
        from sb3_contrib import MaskablePPO

        self.name = "model"
        if isinstance(model, (str, Path)):
            path = Path(model)
            self.name = path.name
            if action_layout is None:
                action_layout = _layout_beside(path)
            model = MaskablePPO.load(str(model), device="cpu")
        self.model = model
        self.action_layout = action_layout
        self.n_actions = int(model.action_space.n)

    def logits(self, obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return masked logits [N, A] from the actor network."""
        import torch

        policy = self.model.policy
        out = np.empty((obs.shape[0], self.n_actions), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, obs.shape[0], CHUNK):
                x = torch.as_tensor(obs[start : start + CHUNK], dtype=torch.float32)
                features = policy.extract_features(x, policy.pi_features_extractor)
                latent = policy.mlp_extractor.forward_actor(features)
                out[start : start + CHUNK] = policy.action_net(latent).numpy()
        return np.where(mask, out, np.float32(MASKED_LOGIT))

    def values(self, obs: np.ndarray) -> np.ndarray:
        """Return the critic's value of each observation [N] (training reward units)."""
        import torch

        policy = self.model.policy
        out = np.empty(obs.shape[0], dtype=np.float64)
        with torch.no_grad():
            for start in range(0, obs.shape[0], CHUNK):
                x = torch.as_tensor(obs[start : start + CHUNK], dtype=torch.float32)
                out[start : start + CHUNK] = policy.predict_values(x).numpy().reshape(-1)
        return out


def load_logit_model(model: str | Path | Any, action_layout: str | None = None) -> LogitModel:
    """Load any model :class:`~collsim.policies.rl.RLPolicy` runs, MaskablePPO included.

    Args:
        model: a MaskablePPO ``.zip`` or a loaded MaskablePPO (wrapped in
            :class:`TorchLogits`), an ensemble ``.json`` (``.zip`` members allowed), or
            anything :func:`collsim.policies.rl.load_logit_model` loads.
        action_layout: the layout JSON of a MaskablePPO trained with treatments
            (:class:`TorchLogits`).

    Raises:
        ValueError: unknown file kind or missing file.
    """
    if isinstance(model, (str, Path)):
        return core.load_logit_model(model, zip_loader=TorchLogits)
    if hasattr(model, "logits") and hasattr(model, "n_actions"):
        return model
    return TorchLogits(model, action_layout)
