"""collsim: decide, simulate and export daily debt-collection contact plans.

Top-level names are loaded lazily, so ``import collsim`` stays light:

* :func:`check_policy` / :class:`PolicyCheckError` (:mod:`collsim.checks`) — check that
  a policy's plan for a snapshot has the right shape, honours the mask and capacity,
  and is deterministic (the counterpart of Gymnasium's ``check_env``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collsim.checks import PolicyCheckError, check_policy

__version__ = "0.1.0"

_LAZY = {"check_policy": "collsim.checks", "PolicyCheckError": "collsim.checks"}

__all__ = ["PolicyCheckError", "__version__", "check_policy"]


def __getattr__(name: str) -> Any:
    """Import a lazily exported name on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'collsim' has no attribute {name!r}")
