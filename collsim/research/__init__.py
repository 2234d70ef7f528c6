"""The research wing's model fitting and research-only policies (may import anything).

Nothing in the core wing imports this package.  It holds what drives the simulator to
learn or to bound a policy:

* :mod:`.exploration` — exploration runs and their training logs (H-day outcomes);
* :mod:`.value` — fitting :class:`~collsim.research.value.ValueModel` /
  :class:`~collsim.research.value.RepaymentModel` (scikit-learn) and their ONNX export
  (run at decide-time by :mod:`collsim.policies.models.value`);
* :mod:`.treatment` — fitting the treatment-effect model read by the core's
  :class:`~collsim.policies.models.treatment.TreatmentChooser`;
* :mod:`.training` — train a scenario's value model, cached on disk as ONNX + JSON;
* :mod:`.registry` — policy ids that train on demand (``greedy``, ``optimised``) or
  read the simulator (``oracle``), on top of the core registry;
* :mod:`.spec` — client-side resolution of experiment policies into self-contained
  specs (trains value models on the client);
* :mod:`.oracle` — the simulator's own expected values and the oracle policy (upper
  bounds; never exported);
* :mod:`.distill` — a strategy tree distilled from any policy by simulating it;
* :mod:`.cgw` / :mod:`.cgw_rl` — external validation on Chehrazi, Glynn & Weber's
  single-account problem: exact solver, event simulation, PPO against the optimum.
"""
