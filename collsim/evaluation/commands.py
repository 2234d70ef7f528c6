"""``collsim compare EXPERIMENT.yaml --out DIR [--scheduler ADDRESS] [--workers N]``.

The CLI wires :func:`compare` as a typer command; it returns the exit code.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable

from collsim.config import ConfigError

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def _error_lines(message: str, console: Console) -> None:
    for line in str(message).splitlines() or [""]:
        console.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)


def compare(experiment: Path, out: Path, scheduler: str | None, workers: int | None) -> int:
    """Run an experiment spec, write its results and report, print the headline table.

    Args:
        experiment: the experiment YAML.
        out: output folder (finished cells in ``out/cells`` are reused: reruns resume).
        scheduler: None for local processes, ``local-cluster`` for a Dask LocalCluster,
            or a Dask scheduler address (``tcp://host:8786``).
        workers: local processes or LocalCluster workers (default ``min(2, CPUs)``).

    Returns:
        0 on success, 2 on bad input (each problem printed on its own line to stderr).
    """
    from collsim.compliance.ruleset import RulesetError
    from collsim.evaluation.report import write_report
    from collsim.evaluation.runner import run_experiment
    from collsim.evaluation.spec import load_experiment

    console, err = Console(), Console(stderr=True)
    if workers is not None and workers < 1:
        _error_lines(f"--workers: must be at least 1, got {workers}", err)
        return EXIT_BAD_INPUT
    try:
        loaded = load_experiment(experiment)
        run_experiment(loaded, out, workers=workers, scheduler=scheduler)
    except (ConfigError, RulesetError, FileNotFoundError, ValueError) as exc:
        _error_lines(str(exc), err)
        return EXIT_BAD_INPUT
    except OSError as exc:  # e.g. a Dask scheduler address that does not answer
        _error_lines(f"--scheduler {scheduler}: {exc}", err)
        return EXIT_BAD_INPUT
    for table in write_report(loaded, out):
        rich = RichTable(title=table.title)
        for i, column in enumerate(table.columns):
            rich.add_column(column, no_wrap=i == 0)  # policy labels stay whole
        for row in table.rows:
            rich.add_row(*row)
        console.print(rich)
    console.print(
        f"wrote {out}/runs.parquet, daily.parquet, channel_mix.parquet, report.md, "
        "report.html, manifest.json"
    )
    return EXIT_OK
