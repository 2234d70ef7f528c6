"""``collsim/AccountBatchFast-v0``: the batched account env with agent calls resolved in rounds.

The same problem as :class:`~collsim.envs.batch.AccountBatchEnv` (observation, action
mask from the same compliance code, reward, autoreset, ``info`` keys, seeding), on the
same engine, with one stage swapped: the day's agent calls run through
:func:`collsim.sim.stages.rounds.agent_calls_by_round` (one vectorised pass for the
planned calls and one per redial, a fluid capacity per centre hour) instead of the
hourly SimPy pool.  Borrower responses, keyed draws, gates, payments and the ledger are
the engine's own.  It is equal in distribution to the full engine on the episode KPIs
(``tests/test_fastenv.py`` checks it within sampling error), not bit for bit: when the
call centre is short of agents, which calls overflow can differ.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from collsim.envs.batch import AccountBatchEnv
from collsim.sim.stages.rounds import agent_calls_by_round


class FastAccountBatchEnv(AccountBatchEnv):
    """:class:`AccountBatchEnv` whose Simulation resolves agent calls in rounds.

    Takes the arguments of :class:`AccountBatchEnv`.
    """

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start N fresh episodes (see :meth:`AccountBatchEnv.reset`) on the round-based stage."""
        obs, info = super().reset(seed=seed, options=options)
        assert self.sim is not None
        self.sim.sim_state.agent_call_stage = agent_calls_by_round
        return obs, info
