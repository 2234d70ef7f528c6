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

__all__ = ["TorchLogits", "load_logit_model"]


class TorchLogits:
    """Masked logits of a MaskablePPO model (torch; CPU, no gradients).

    Args:
        model: a ``sb3_contrib.MaskablePPO`` or a path to its ``.zip``.

    Attributes:
        name: the ``.zip`` file name ("model" for a loaded model), for policy ids.
    """

    def __init__(self, model: Any) -> None:
        from sb3_contrib import MaskablePPO

        self.name = "model"
        if isinstance(model, (str, Path)):
            self.name = Path(model).name
            model = MaskablePPO.load(str(model), device="cpu")
        self.model = model
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


def load_logit_model(model: str | Path | Any) -> LogitModel:
    """Load any model :class:`~collsim.policies.rl.RLPolicy` runs, MaskablePPO included.

    Args:
        model: a MaskablePPO ``.zip`` or a loaded MaskablePPO (wrapped in
            :class:`TorchLogits`), an ensemble ``.json`` (``.zip`` members allowed), or
            anything :func:`collsim.policies.rl.load_logit_model` loads.

    Raises:
        ValueError: unknown file kind or missing file.
    """
    if isinstance(model, (str, Path)):
        return core.load_logit_model(model, zip_loader=TorchLogits)
    if hasattr(model, "logits") and hasattr(model, "n_actions"):
        return model
    return TorchLogits(model)
