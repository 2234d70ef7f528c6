"""Self-contained policy specs: identical results locally, from specs, and on a real Dask cluster.

The cluster test starts ``dask scheduler`` and a ``dask worker`` as subprocesses, each with
its cwd in its own temporary directory (not the experiment's folder), so a worker that
resolved a relative tree path or trained a value model itself would fail or diverge.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from collsim.config import load_scenario
from collsim.evaluation.runner import plan_cells, run_experiment
from collsim.evaluation.spec import load_experiment
from collsim.export.testing import tiny_rl_onnx
from collsim.features import FEATURE_NAMES
from collsim.policies.rl import EnsembleLogits
from collsim.vocab import N_CHANNELS

ROOT = Path(__file__).resolve().parents[1]

SPEC = """\
name: cluster_tiny
scenario: default
n_accounts: 200
days: 6
seeds: 2
policies:
  - {label: champion, id: champion}
  - {label: light, id: trees/light.yaml}
  - {label: optimised, id: optimised, params: {training: {seeds: [7], n_accounts: 300, days: 30}}}
  - {label: rl, id: "rl:models/rl.onnx"}
  - {label: ensemble, id: "rl:models/ensemble.json", params: {priority: confidence}}
baseline: champion
"""


def _experiment_folder(tmp: Path) -> Path:
    folder = tmp / "exp"
    (folder / "trees").mkdir(parents=True)
    shutil.copy(ROOT / "experiments/trees/champion_light_touch.yaml", folder / "trees/light.yaml")
    models = folder / "models"
    (models / "a").mkdir(parents=True)
    n_actions = 1 + len(load_scenario("default").sim.operating_hours) * N_CHANNELS
    for seed, target in ((3, models / "rl.onnx"), (4, models / "a" / "m.onnx")):
        target.write_bytes(tiny_rl_onnx(len(FEATURE_NAMES), n_actions, seed, score=True))
    EnsembleLogits.write(models / "ensemble.json", [models / "rl.onnx", models / "a" / "m.onnx"])
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private model cache, so the client trains (a worker never can)."""
    monkeypatch.setenv("COLLSIM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_cells_carry_content_not_paths(tmp_path: Path, cache: Path) -> None:
    """Resolved specs pickle, hold the tree and model bytes, and name no relative path."""
    experiment = load_experiment(_experiment_folder(tmp_path) / "spec.yaml")
    cells = plan_cells(experiment)
    by_label = {c.label: c.policy for c in cells}
    assert by_label["light"] is not None and by_label["light"].tree is not None
    assert by_label["optimised"] is not None and by_label["optimised"].files
    for label in ("rl", "ensemble"):
        spec = by_label[label]
        assert spec is not None and spec.kind == "files"
        assert str(tmp_path) not in repr(spec) + spec.model_ref + " ".join(spec.files)
    ensemble = by_label["ensemble"]
    assert ensemble is not None and sorted(ensemble.files) == [
        "ensemble.json", "m0/rl.onnx", "m1/m.onnx"
    ]  # fmt: skip
    for label in ("light", "rl"):
        restored = pickle.loads(pickle.dumps(by_label[label]))
        assert restored == by_label[label]


@pytest.fixture
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """A real ``dask scheduler`` + ``dask worker``, each in its own temporary cwd."""
    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("dask CLI not installed")
    sched_dir, worker_dir = tmp_path / "sched", tmp_path / "worker"
    sched_dir.mkdir()
    worker_dir.mkdir()
    sched_file = sched_dir / "scheduler.json"
    blocked_cache = worker_dir / "no-cache"  # a file: a worker that tried to train would fail
    blocked_cache.write_text("", encoding="utf-8")
    worker_env = {**os.environ, "COLLSIM_CACHE": str(blocked_cache)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [str(dask), "scheduler", "--scheduler-file", str(sched_file),
                 "--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"],
                cwd=sched_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert sched_file.exists(), "dask scheduler did not start"
        procs.append(
            subprocess.Popen(
                [str(dask), "worker", "--scheduler-file", str(sched_file),
                 "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
                cwd=worker_dir, env=worker_env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        from distributed import Client

        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout="20s") as client:
            client.wait_for_workers(1, timeout=30)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_real_cluster_equals_local(
    tmp_path: Path, cache: Path, dask_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The experiment on a real scheduler + worker (other cwd) equals the local run.

    The experiment is loaded by a relative path, as ``collsim compare exp/spec.yaml`` does.
    """
    _experiment_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(Path("exp/spec.yaml"))
    local = run_experiment(experiment, tmp_path / "local", workers=1, progress=False)
    remote = run_experiment(experiment, tmp_path / "remote", scheduler=dask_cluster, progress=False)
    for name in ("runs", "daily", "channel_mix"):
        assert_frame_equal(pl.read_parquet(local[name]), pl.read_parquet(remote[name]))
    runs = pl.read_parquet(remote["runs"])
    assert set(runs["policy"]) == {"champion", "light", "optimised", "rl", "ensemble"}


def test_resolved_cells_equal_direct_build(tmp_path: Path, cache: Path) -> None:
    """Same seeds, same numbers: a cell built from its spec equals the old path-based build."""
    from dataclasses import replace

    from collsim.evaluation.runner import run_cell

    experiment = load_experiment(_experiment_folder(tmp_path) / "spec.yaml")
    for cell in plan_cells(experiment)[:3]:
        assert cell.policy is not None
        direct = run_cell(replace(cell, policy=None))
        assert run_cell(cell) == direct
