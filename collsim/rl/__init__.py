"""Reinforcement learning for collsim (research side: torch and stable-baselines3).

Modules (import the one you need; nothing heavy is imported here):

* :mod:`collsim.rl.training` — :class:`~collsim.rl.training.TrainConfig`,
  :func:`~collsim.rl.training.train_model` (MaskablePPO on ``collsim/AccountBatch-v0``,
  deterministic single-threaded torch), the masked evaluation and the training curve;
* :mod:`collsim.rl.commands` — :func:`~collsim.rl.commands.train`, the ``collsim train``
  command as a function returning an exit code;
* :mod:`collsim.rl.logits` — a MaskablePPO (or its ``.zip``) as the LogitModel that
  :class:`~collsim.policies.rl.RLPolicy` runs (``TorchLogits``, ``load_logit_model``);
* :mod:`collsim.rl.export` — the trained policy as an ONNX graph in the ``rl_onnx``
  signature and as a policy artifact;
* :mod:`collsim.rl.select` — checkpoint selection on several validation seeds, the way
  the policy is deployed (an evaluation-runner experiment), and ensembles of the selected
  checkpoints;
* :mod:`collsim.rl.tiny` — a tiny collections MDP solved exactly by finite-horizon DP
  (numpy only); :mod:`collsim.rl.tiny_env` — MaskablePPO on its Gymnasium env
  (:class:`collsim.envs.tiny.TinyCollectionsEnv`, a fixture, not a registered id).

The deciding policies live in :mod:`collsim.policies.rl` (``RLPolicy``) and
:mod:`collsim.policies.hybrid` (``HybridPolicy``); both run from an ONNX export
without torch, and production runs ``rl_onnx`` artifacts through ``RLPolicy`` too.
Comparisons of trained policies with the champion are evaluation-runner experiments:
``collsim compare EXPERIMENT.yaml`` (e.g. ``experiments/headline_full.yaml``) or
``benchmarks/rl_compare.py``, whose tables are in ``benchmarks/RL_COMPARISON.md``.
"""
