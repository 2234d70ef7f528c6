"""Contact history: one row per past contact attempt, as columns.

The contact history file (docs/input_formats.md) is loaded by :func:`collsim.tables.load_history`;
the simulator appends to a :class:`History` as it runs.  Compliance rules read a
:class:`collsim.compliance.ContactWindow` built from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class History:
    """Contact attempts as columns (all arrays of length M).

    Attributes:
        account: int64 row index into the portfolio.
        local_day: int64 local calendar day number of the attempt in the account's zone.
        local_hour: int8 local hour of the attempt.
        channel: int8 channel code.
        outcome: int8 outcome code.
        conversation: bool, a telephone conversation with the borrower took place.
    """

    account: np.ndarray
    local_day: np.ndarray
    local_hour: np.ndarray
    channel: np.ndarray
    outcome: np.ndarray
    conversation: np.ndarray

    @classmethod
    def empty(cls) -> History:
        """Return a history with no rows."""
        return cls(
            account=np.zeros(0, dtype=np.int64),
            local_day=np.zeros(0, dtype=np.int64),
            local_hour=np.zeros(0, dtype=np.int8),
            channel=np.zeros(0, dtype=np.int8),
            outcome=np.zeros(0, dtype=np.int8),
            conversation=np.zeros(0, dtype=bool),
        )

    @property
    def m(self) -> int:
        """Number of rows."""
        return int(self.account.shape[0])

    def for_accounts(self, listed: np.ndarray, n_accounts: int) -> History:
        """Return the rows of the ``listed`` accounts, renumbered as rows of their subset.

        Args:
            listed: int [L], account rows of the full portfolio, in the subset's order
                (e.g. the rows passed to :meth:`collsim.portfolio.Portfolio.take`).
            n_accounts: size of the full portfolio.
        """
        position = np.full(n_accounts, -1, dtype=np.int64)
        position[listed] = np.arange(listed.size)
        account = position[self.account]
        keep = account >= 0
        return History(
            account=account[keep],
            local_day=self.local_day[keep],
            local_hour=self.local_hour[keep],
            channel=self.channel[keep],
            outcome=self.outcome[keep],
            conversation=self.conversation[keep],
        )

    @staticmethod
    def concat(parts: list[History]) -> History:
        """Concatenate histories row-wise."""
        if not parts:
            return History.empty()
        return History(
            **{
                name: np.concatenate([getattr(p, name) for p in parts])
                for name in (
                    "account",
                    "local_day",
                    "local_hour",
                    "channel",
                    "outcome",
                    "conversation",
                )
            }
        )
