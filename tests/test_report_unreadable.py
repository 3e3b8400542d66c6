"""lipbench-report on run dirs it cannot read: each is listed with why, never dropped silently or a traceback."""
import shutil

import pytest

from lipbench import LipbenchError
from lipbench.report import main
from lipbench.report.runs import find_runs
from tests.conftest import FAST, lipbench, run_dirs

GOOD_SUMMARY = '{"status": "complete", "metric": "w1", "config": {"method": {"name": "gp"}}}'


def run_dir(root, name: str, summary: bytes | str, metrics: bytes | str = '{"epoch": 1, "eval/w1": 0.5}\n'):
    """A run dir holding these summary.json and metrics.jsonl contents."""
    path = root / name
    path.mkdir(parents=True)
    for file, content in (("summary.json", summary), ("metrics.jsonl", metrics)):
        (path / file).write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


# name -> (summary.json, metrics.jsonl, what the reason must say); each makes its run dir unreadable.
UNREADABLE = {
    "torn-summary": ('{"status": "compl', "", "summary.json is unreadable (JSONDecodeError"),
    "binary-summary": (bytes(range(128, 256)), "", "summary.json is unreadable (UnicodeDecodeError"),
    "empty-summary": (b"", "", "summary.json is unreadable (empty file)"),
    "list-summary": ("[1, 2]", "", "summary.json holds a JSON list, not an object"),
    "binary-metrics": (GOOD_SUMMARY, bytes(range(128, 256)) * 3, "metrics.jsonl is not a text file of JSON lines"),
}


def test_unreadable_run_dirs_are_returned_with_why_and_bad_lines_are_skipped(tmp_path):
    good = run_dir(tmp_path, "good", GOOD_SUMMARY, '{"epoch": 1, "eval/w1": 0.5}\n{}\n{"eval/w1": 3}\n')
    for name, (summary, metrics, _) in UNREADABLE.items():
        run_dir(tmp_path, name, summary, metrics)
    runs, unreadable = find_runs([tmp_path])
    assert [run.path for run in runs] == [good] and runs[0].records == [{"epoch": 1, "eval/w1": 0.5}]
    reasons = {u.path.name: u.why for u in unreadable}
    assert set(reasons) == set(UNREADABLE)
    for name, (_, _, why) in UNREADABLE.items():
        assert reasons[name].startswith(why.split(" ")[0]) and why in reasons[name] and "\n" not in reasons[name]


def test_only_unreadable_runs_is_one_line_naming_one(tmp_path):
    run_dir(tmp_path, "torn", '{"status": "compl')
    with pytest.raises(LipbenchError) as error:
        find_runs([tmp_path])
    assert "no readable summary.json" in str(error.value) and f"{tmp_path / 'torn'}: summary.json" in str(error.value)


@pytest.mark.slow
def test_the_report_lists_unreadable_runs_beside_the_compared_ones(tmp_path, capsys):
    lipbench(tmp_path, "-m", "method=gp,sn", *FAST, "logger.wandb.mode=disabled")
    gp, sn = run_dirs(tmp_path / "runs")
    for name in UNREADABLE:
        shutil.copytree(gp, tmp_path / "runs" / name)
    (tmp_path / "runs" / "torn-summary" / "summary.json").write_text('{"status": "compl')
    (tmp_path / "runs" / "binary-metrics" / "metrics.jsonl").write_bytes(bytes(range(128, 256)) * 3)
    for name in ("binary-summary", "empty-summary", "list-summary"):
        summary, _, _ = UNREADABLE[name]
        (tmp_path / "runs" / name / "summary.json").write_bytes(summary if isinstance(summary, bytes) else
                                                                 summary.encode())
    with (sn / "metrics.jsonl").open("a") as f:
        f.write("{}\n")  # skipped, as a line without an epoch

    main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")])
    assert "5 unreadable run dirs are listed there" in capsys.readouterr().out
    report = (tmp_path / "report" / "report.md").read_text()
    listed = report.split("## Unreadable runs", 1)[1]
    for name, (_, _, why) in UNREADABLE.items():
        assert f"| {tmp_path / 'runs' / name} | " in listed and why in listed
    assert str(gp) not in listed and str(sn) not in listed
