"""Publishing a plan file and its manifest as one atomic unit.

A plan ``DIR/plan.parquet`` is published as::

    DIR/plan.parquet               -> .plan.parquet.d/current/plan.parquet
    DIR/plan.parquet.manifest.json -> .plan.parquet.d/current/plan.parquet.manifest.json
    DIR/.plan.parquet.d/
        lock                       advisory lock (fcntl.flock) held while writing
        current -> g-<utc>-<rand>  the published generation
        g-<utc>-<rand>/            plan file + manifest, fsynced before publication

The two names in ``DIR`` are fixed symbolic links through ``current``; publishing a
new generation is a single ``rename`` of a ``current`` link, so a reader, a crash or
a second writer never sees a plan with the wrong manifest, and the previous good
plan stays in place until the new one is complete.  Generations that ``current`` no
longer points to (except the previous one, for readers still on it) and temporary
names left by a killed run are removed by the next run, under the lock.

The steps call :func:`crash_point` with their name, so that tests can inject a
crash between any two of them.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STEPS = (
    "locked",
    "cleaned",
    "generation_written",
    "generation_synced",
    "current_link_made",
    "current_swapped",
    "manifest_linked",
    "names_linked",
    "old_removed",
)
"""The named points between the steps of :func:`publish`, in order."""

_CURRENT = "current"
_GENERATION = "g-"
_TEMP = ".tmp-"


class PublishError(OSError):
    """The plan cannot be published (locked by another writer, unsafe output path)."""


def crash_point(step: str) -> None:
    """Called after each step of :func:`publish`; a test replaces it to inject a crash."""


def manifest_name(plan_name: str) -> str:
    """Return the manifest file name of a plan file name (``plan.parquet.manifest.json``)."""
    return f"{plan_name}.manifest.json"


def store_of(out: Path) -> Path:
    """Return the hidden folder holding the generations of plan file ``out``."""
    return out.with_name(f".{out.name}.d")


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created, renamed or removed) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Flush a file's bytes to stable storage."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def writer_lock(store: Path) -> Iterator[None]:
    """Hold the advisory lock of a plan's store; raise PublishError if another writer has it."""
    store.mkdir(parents=True, exist_ok=True)
    fd = os.open(store / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise PublishError(
                    f"{store.parent}: another collsim run is writing this plan now; "
                    "nothing written (retry when it has finished)"
                ) from None
            raise
        yield
    finally:
        os.close(fd)


def _link_target(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def clean_stale(store: Path, keep_previous: str | None = None) -> list[str]:
    """Remove temporaries of killed runs and unpublished generations; return their names.

    Kept: the lock, ``current``, the generation it points to and ``keep_previous``.
    Must be called with the lock held.
    """
    current = _link_target(store / _CURRENT)
    keep = {"lock", _CURRENT, current, keep_previous}
    removed = []
    for entry in sorted(store.iterdir()):
        if entry.name in keep:
            continue
        if entry.name.startswith((_TEMP, _GENERATION)):
            _remove(entry)
            removed.append(entry.name)
    plan_name = store.name[1 : -len(".d")]
    legacy = (f".{plan_name}.", f".{plan_name}.manifest.json.")  # older collsim's temporaries
    for entry in store.parent.iterdir():  # temporary outer links of a killed run
        stale_link = entry.name.startswith(f".{store.name}{_TEMP}")
        stale_file = entry.name.startswith(legacy) and entry.name.endswith(".tmp")
        if stale_link or (stale_file and entry.is_file() and not entry.is_symlink()):
            _remove(entry)
            removed.append(entry.name)
    return removed


def _swap_link(link: Path, target: str, temp_prefix: str) -> None:
    """Point ``link`` at ``target`` with one atomic rename of a new symbolic link."""
    temp = link.with_name(f"{temp_prefix}{secrets.token_hex(6)}")
    os.symlink(target, temp)
    os.replace(temp, link)


def publish(out: Path, write: Callable[[Path, Path], None]) -> None:
    """Write a plan and its manifest with ``write(plan_path, manifest_path)`` and publish both.

    ``write`` is given paths inside a fresh generation folder.  The pair becomes
    visible at ``out`` and ``manifest_name(out)`` in one atomic step; on any error
    (or a crash) the previously published pair, if any, stays readable.

    Raises:
        PublishError: another writer holds the lock.
        OSError: the output disk is read-only, full, etc.
    """
    store = store_of(out)
    with writer_lock(store):
        crash_point("locked")
        previous = _link_target(store / _CURRENT)
        clean_stale(store)
        crash_point("cleaned")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{_GENERATION}{stamp}-{secrets.token_hex(4)}"
        temp = store / f"{_TEMP}{name}"
        temp.mkdir(mode=0o755)
        try:
            write(temp / out.name, temp / manifest_name(out.name))
            crash_point("generation_written")
            for file in temp.iterdir():
                fsync_file(file)
        except Exception:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        generation = store / name
        os.rename(temp, generation)
        fsync_dir(generation)
        fsync_dir(store)
        crash_point("generation_synced")
        link = store / f"{_TEMP}{_CURRENT}-{secrets.token_hex(6)}"
        os.symlink(name, link)
        crash_point("current_link_made")
        os.replace(link, store / _CURRENT)
        fsync_dir(store)
        crash_point("current_swapped")
        # The manifest's name first: a crash in between never shows a plan without it.
        for file_name, step in ((manifest_name(out.name), "manifest_linked"), (out.name, "")):
            target = f"{store.name}/{_CURRENT}/{file_name}"
            if _link_target(out.with_name(file_name)) != target:
                _swap_link(out.with_name(file_name), target, f".{store.name}{_TEMP}")
            if step:
                crash_point(step)
        fsync_dir(out.parent)
        crash_point("names_linked")
        clean_stale(store, keep_previous=previous)
        crash_point("old_removed")


def is_published_by_us(out: Path) -> bool:
    """Whether ``out`` is the link to a generation published by :func:`publish`."""
    return _link_target(out) == f"{store_of(out).name}/{_CURRENT}/{out.name}"


def output_problems(out: Path, inputs: list[Path], force: bool) -> list[str]:
    """Return why ``out`` must not be written (empty if it may).

    Refused: an input file (or a file inside an input folder, e.g. the artifact), a
    folder, a device or anything but a regular file or a published plan, and an
    existing plan or file unless ``force``.  The manifest name beside ``out`` is held
    to the same rules.
    """
    problems = []
    for path in (out, out.with_name(manifest_name(out.name))):
        resolved = path.resolve()
        for source in inputs:
            real = source.resolve()
            if resolved == real or (real.is_dir() and resolved.is_relative_to(real)):
                problems.append(f"--out {out}: would overwrite input {source}; choose another path")
                break
    if problems:
        return problems
    if out.is_symlink() and is_published_by_us(out):
        kind = "a published plan"
    elif out.exists() or out.is_symlink():
        mode = out.lstat().st_mode
        if stat.S_ISDIR(mode):
            return [f"--out {out}: is a directory; expected a plan file path"]
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            return [f"--out {out}: is not a regular file (device, pipe or socket); refused"]
        kind = "an existing file"
    else:
        return []
    if not force:
        return [f"--out {out}: {kind} is there; pass --force to replace it"]
    return []


__all__ = [
    "STEPS",
    "PublishError",
    "clean_stale",
    "crash_point",
    "fsync_dir",
    "fsync_file",
    "manifest_name",
    "output_problems",
    "publish",
    "store_of",
    "writer_lock",
]
