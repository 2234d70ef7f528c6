"""Run manifests: what produced a result (scenario, config hash, seed, versions)."""

from __future__ import annotations

import datetime as dt
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from collsim import __version__
from collsim.io import atomic_write_text

_PACKAGES = (
    "numpy",
    "scipy",
    "simpy",
    "pyarrow",
    "pydantic",
    "ortools",
    "gymnasium",
    "stable-baselines3",
    "sb3-contrib",
    "torch",
    "scikit-learn",
    "onnxruntime",
    "polars",
    "dask",
    "distributed",
    "matplotlib",
)


def package_versions() -> dict[str, str]:
    """Versions of collsim's main dependencies that are installed."""
    versions = {"python": platform.python_version(), "collsim": __version__}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def write_manifest(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Write a JSON manifest with the given fields, the time and package versions."""
    manifest = {
        **fields,
        "created_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "versions": package_versions(),
    }
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return manifest
