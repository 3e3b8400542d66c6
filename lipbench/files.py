"""Atomic file writes and a race-safe file cache: a reader (or a resumed run) never sees a half-written file."""
import fcntl
import json
import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary sibling, then rename it over `path` in one step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data) -> Path:
    """Atomically write `data` as indented JSON."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_jsonl(path: Path) -> list[dict]:
    """All records of a JSON-lines file; a torn last line (a run killed mid-write) is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def read_json_or_none(path: Path):
    """The JSON content of `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cached(path: Path, compute: Callable[[], object], save: Callable[[object, Path], None],
           load: Callable[[Path], object]) -> tuple[object, bool]:
    """`(load(path), False)` if it exists, else `(compute(), True)` saved atomically; racing processes compute once."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second sweep job waits here, then finds the file; released on close
        if path.exists():
            return load(path), False
        value = compute()
        atomic_write(path, lambda tmp: save(value, tmp))
        return value, True
