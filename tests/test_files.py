"""Atomic writes leave nothing behind, not even after a writer is killed; metrics records are read defensively."""
import json
import os
import signal
import subprocess
import sys

import pytest

from lipbench import LipbenchError
from lipbench.files import atomic_write, read_jsonl, remove_abandoned_temps
from tests.conftest import FAST, REPO, lipbench, read_summary, run_dirs

# A process that starts an atomic write and stays in it until it is killed, as a run killed mid-checkpoint does.
STUCK_WRITER = """
import sys, time
from pathlib import Path
from lipbench.files import atomic_write

def write(tmp):
    tmp.write_bytes(b"half a checkpoint")
    print("writing", flush=True)
    time.sleep(600)

atomic_write(Path(sys.argv[1]), write)
"""


def stuck_writer(target) -> subprocess.Popen:
    """A writer of `target` caught inside atomic_write (its temporary written, not yet renamed)."""
    proc = subprocess.Popen([sys.executable, "-c", STUCK_WRITER, str(target)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.readline() == "writing\n"
    return proc


def temps(directory) -> list[str]:
    """The temporaries (hidden *.tmp files) in `directory`."""
    return sorted(p.name for p in directory.glob(".*.tmp"))


def test_a_killed_writers_temporary_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path):
    target = tmp_path / "checkpoint.pt"
    writer = stuck_writer(target)
    try:
        live = f".checkpoint.pt.{writer.pid}.tmp"
        atomic_write(target, lambda tmp: tmp.write_bytes(b"first"))
        assert target.read_bytes() == b"first" and temps(tmp_path) == [live]  # a live writer's file is its own
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert temps(tmp_path) == [live]  # what a SIGKILL leaves: no finally ran
    atomic_write(target, lambda tmp: tmp.write_bytes(b"second"))
    assert target.read_bytes() == b"second" and temps(tmp_path) == []


def test_only_atomic_writes_own_abandoned_temporaries_are_removed(tmp_path):
    """Another target's temporary, or a hidden .tmp file that is not of the .NAME.PID.tmp form, is not touched."""
    for name in (".checkpoint.pt.123.tmp", ".best.pt.456.tmp", ".notes.tmp", ".checkpoint.pt.draft.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in remove_abandoned_temps(tmp_path, "checkpoint.pt")] == [".checkpoint.pt.123.tmp"]
    assert [p.name for p in remove_abandoned_temps(tmp_path)] == [".best.pt.456.tmp"]
    assert temps(tmp_path) == [".checkpoint.pt.draft.tmp", ".notes.tmp"]


def test_a_failed_write_leaves_neither_a_temporary_nor_a_changed_target(tmp_path):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and temps(tmp_path) == []


def test_metrics_lines_without_an_epoch_are_skipped(tmp_path):
    """A `{}` line, a record without "epoch", a non-object and a torn last line are not records."""
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1, "loss": 0.5}\n{}\n{"loss": 2}\n[1, 2]\n{"epoch": "2"}\n'
                    '{"epoch": 2, "loss": 0.25}\n{"epoch": 3, "lo')
    assert read_jsonl(path) == [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25}]


def test_a_binary_metrics_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(bytes(range(128, 256)) * 4)
    with pytest.raises(LipbenchError) as error:
        read_jsonl(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_a_completed_run_leaves_no_temporary_even_after_a_kill_mid_checkpoint(tmp_path):
    """A run leaves no *.tmp; nor does one resumed after a writer was SIGKILLed inside the checkpoint's write (the
    0-byte .checkpoint.pt.PID.tmp of issue 10)."""
    lipbench(tmp_path, *FAST)
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert read_summary(run_dir)["status"] == "complete" and not list(run_dir.rglob("*.tmp"))

    resumed = tmp_path / "resumed"
    short = [o for o in FAST if not o.startswith("train.epochs=")]
    lipbench(tmp_path, *short, "train.epochs=1", f"hydra.run.dir={resumed}")
    writer = stuck_writer(resumed / "checkpoint.pt")
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert len(temps(resumed)) == 1
    lipbench(tmp_path, *short, "train.epochs=2", f"hydra.run.dir={resumed}")
    assert read_summary(resumed)["status"] == "complete" and not list(resumed.rglob("*.tmp"))
    assert [json.loads(line)["epoch"] for line in (resumed / "metrics.jsonl").read_text().splitlines()] == [1, 2]
