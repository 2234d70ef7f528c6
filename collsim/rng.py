"""Randomness: one SeedSequence per run, named streams, and keyed draws.

Two kinds of randomness exist in collsim:

* **Streams** — ordinary ``numpy.random.Generator`` objects for things drawn
  once (the synthetic population) or owned by one component (a random policy).
  Each is spawned from the run's single :class:`numpy.random.SeedSequence` by
  name, so adding a stream never shifts another.
* **Keyed draws** — uniforms that are a pure function of
  ``(run key, purpose, account, day, attempt)``.  Every behavioural draw uses
  them, so two policies simulated with the same seed face the same borrowers
  (common random numbers) whatever else they do.  They are computed with a
  vectorised SplitMix64 finaliser over uint64 arrays, only for the accounts
  that need them.
"""

from __future__ import annotations

import hashlib

import numpy as np

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ACCOUNT_MUL = np.uint64(0xD6E8FEB86659FD93)
_DAY_MUL = np.uint64(0xA0761D6478BD642F)
_ATTEMPT_MUL = np.uint64(0xE7037ED1A0B428DB)


def name_key(name: str) -> int:
    """Return a stable 32-bit integer for a stream or purpose name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser, vectorised over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        return x ^ (x >> np.uint64(31))


class RunRandom:
    """All randomness of one run, derived from one seed.

    Args:
        seed: the run's seed (any non-negative integer).

    Example:
        >>> rr = RunRandom(7)
        >>> u = rr.uniform("answer", day=3, account=np.arange(5))
        >>> bool(np.all((u >= 0) & (u < 1)))
        True
    """

    def __init__(self, seed: int) -> None:
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.root = np.random.SeedSequence(self.seed)
        behaviour_state = self.stream_seed("behaviour").generate_state(2, dtype=np.uint64)
        self._behaviour_key = np.uint64(behaviour_state[0])

    def stream_seed(self, name: str) -> np.random.SeedSequence:
        """Return the SeedSequence of a named stream (stable across code changes)."""
        return np.random.SeedSequence(self.root.entropy, spawn_key=(name_key(name),))

    def generator(self, name: str) -> np.random.Generator:
        """Return a fresh PCG64 generator for a named stream."""
        return np.random.Generator(np.random.PCG64(self.stream_seed(name)))

    def bits(self, purpose: str, day: int, account: np.ndarray, attempt: int = 0) -> np.ndarray:
        """Return uint64 hash bits keyed by (run, purpose, day, account, attempt)."""
        account = np.asarray(account, dtype=np.uint64)
        with np.errstate(over="ignore"):
            key = (
                self._behaviour_key
                ^ np.uint64(name_key(purpose))
                ^ (np.uint64(day) * _DAY_MUL)
                ^ (np.uint64(attempt) * _ATTEMPT_MUL)
            )
            base = _splitmix(np.asarray(key, dtype=np.uint64))
            return _splitmix(base ^ (account * _ACCOUNT_MUL))

    def uniform(self, purpose: str, day: int, account: np.ndarray, attempt: int = 0) -> np.ndarray:
        """Return float64 uniforms in [0, 1), one per account, keyed (see class doc)."""
        return (self.bits(purpose, day, account, attempt) >> np.uint64(11)).astype(np.float64) * (
            1.0 / 9007199254740992.0
        )
