"""Atomic file writes and a race-safe file cache: a reader (or a resumed run) never sees a half-written file."""
import fcntl
import glob
import json
import os
from collections.abc import Callable
from pathlib import Path

from lipbench import LipbenchError


def describe(error: BaseException, path: Path | None = None) -> str:
    """Why reading `path` raised `error`, in a few words: "empty file" for an empty one, else the exception's type
    and the first sentence of its message (libraries' messages run to paragraphs), without the path itself."""
    message = str(error).strip()
    if path is not None:
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            return "empty file"
        message = message.replace(f" '{path}'", "").replace(f" {path}", "")
    first = message.splitlines()[0].split(". ")[0][:160] if message else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def remove_abandoned_temps(directory: Path, target: str = "*") -> list[Path]:
    """Delete the temporaries `atomic_write` left for `target` (a glob) in `directory` when a process was killed
    mid-write; a temporary whose writer is alive holds a lock and is kept. Returns the deleted paths."""
    removed = []
    for tmp in Path(directory).glob(f".{target}.*.tmp"):
        if not tmp.name.rsplit(".", 2)[-2].isdigit():  # not one of ours (.NAME.PID.tmp)
            continue
        try:
            with open(tmp, "r+b") as held:  # writable: NFS emulates flock with locks that need it
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # being written (locked), removed by someone else meanwhile, or not ours to delete
            continue
    return removed


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` on a temporary sibling, then rename it over `path` in one step.

    The temporary is locked while it is written, so a temporary left by a killed writer (SIGKILL, a node failure)
    can be told from a live one: each write first removes the abandoned temporaries of `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_abandoned_temps(path.parent, glob.escape(path.name))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        # `write` reopens tmp by name and truncates it: the same file, so the lock taken here covers the write.
        with open(tmp, "wb") as held:
            fcntl.flock(held, fcntl.LOCK_EX)
            write(tmp)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data) -> Path:
    """Atomically write `data` as indented JSON."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_jsonl(path: Path) -> list[dict]:
    """The epoch records of a metrics.jsonl file: JSON objects with an integer "epoch". Other lines (a torn last line
    of a killed run, a stray `{}`) are skipped; a file that is not text at all is a one-line LipbenchError."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise LipbenchError(f"{path} is not a text file of JSON lines ({describe(error, path)}): "
                            "restore it, or delete the run dir") from None
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and type(record.get("epoch")) is int:
            records.append(record)
    return records


def read_json_or_none(path: Path):
    """The JSON content of `path`, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8 text
        return None


def cached(path: Path, compute: Callable[[], object], save: Callable[[object, Path], None],
           load: Callable[[Path], object]) -> tuple[object, bool]:
    """`(load(path), False)` if it exists, else `(compute(), True)` saved atomically; racing processes compute once.

    A cache file that `load` cannot read (truncated, foreign, from another version; `load` raises on content it
    does not accept) is a one-line LipbenchError naming the file to delete, never a traceback or a silent recompute.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second sweep job waits here, then finds the file; released on close
        if path.exists():
            try:
                return load(path), False
            except Exception as error:  # torch, numpy and pickle raise many types on a damaged file
                raise LipbenchError(f"cache file {path} is unreadable ({describe(error, path)}): delete it, and it is "
                                    "computed again on the next run") from error
        value = compute()
        atomic_write(path, lambda tmp: save(value, tmp))
        return value, True
