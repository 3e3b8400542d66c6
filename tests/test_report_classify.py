"""lipbench-report on real tiny classifier runs: groups per method strength, means, claims, and a GAN run beside."""
import csv
import itertools
import json
import shutil
import statistics

import pytest
from scipy.stats import spearmanr

from lipbench.report import main
from lipbench.report.classify import correlation_verdict, rank_correlation
from tests.conftest import (
    FAST,
    PNG_SIGNATURE,
    lipbench,
    read_metrics,
    read_summary,
    run_dirs,
)

# 16x16 digits, 4 steps of 64, one epoch; 50 attacked points, 2 PGD steps.
TINY = ["task=classify", "dataset.image_size=16", "train.subset=256", "train.batch_size=64", "train.epochs=1",
        "eval.num_samples=50", "eval.eps=[0.5,1.0]", "eval.pgd_steps=2", "logger.wandb.mode=disabled"]

# Every test here reads a module fixture of real runs, which takes ~30 s to make.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """pair/: l2 and spectral_reg x 2 seeds; more/: l2 at a second strength x 2 seeds; gan/: one toy GAN run."""
    root = tmp_path_factory.mktemp("report_classify")
    lipbench(root / "pair", "-m", "method=l2/1e-3,spectral_reg/1e-2", "seed=0,1", *TINY)
    lipbench(root / "more", "-m", "method=l2/1e-2", "seed=0,1", *TINY)
    lipbench(root / "gan", "method=none", *FAST, "train.epochs=1", "logger.wandb.mode=disabled")
    return root


def report(paths, out) -> tuple[dict[str, dict], str]:
    """Run the command; return report.csv's rows by group and report.md's text."""
    main([*map(str, paths), "--out", str(out)])
    with open(out / "report.csv") as f:
        rows = {row["group"]: row for row in csv.DictReader(f)}
    return rows, (out / "report.md").read_text()


def table_rows(text: str, start: str) -> list[list[str]]:
    """The cells of report.md's table rows that start with `start`."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {start}")]


def final_records(root) -> dict[str, list[dict]]:
    """Each classifier group's runs' last metrics.jsonl record, by the group label the report should give them."""
    groups = {}
    for run_dir in run_dirs(root):
        method = read_summary(run_dir)["config"]["method"]
        label = method["name"] if method["name"] == "spectral_reg" else f"l2 λ={method['weight']}"
        groups.setdefault(label, []).append(read_metrics(run_dir)[-1])
    return groups


def test_table_groups_each_method_strength_with_counts_and_means(runs, tmp_path):
    rows, text = report([runs / "pair", runs / "more"], tmp_path)
    records = final_records(runs / "pair") | {"l2 λ=0.01": final_records(runs / "more")["l2 λ=0.01"]}
    # method=l2/1e-3 and l2/1e-2 are one method at two strengths: two groups, labelled by the weight.
    assert set(rows) == set(records) == {"l2 λ=0.001", "l2 λ=0.01", "spectral_reg"}
    for label, finals in records.items():
        row = rows[label]
        assert (row["task"], row["runs"], row["complete"], row["diverged"]) == ("classify", "2", "2", "0")
        for column, key in [("test_error", "eval/test_error"), ("gap_accuracy", "gap/accuracy"),
                            ("gap_loss", "gap/loss"), ("pgd_eps0.5", "robust/pgd_eps0.5"),
                            ("fgsm_eps1", "robust/fgsm_eps1"), ("lipschitz_bound", "diag/lipschitz_bound"),
                            ("margin_grad_mean", "diag/margin_grad_mean")]:
            values = [record[key] for record in finals]
            assert row[f"{column}_n"] == "2"
            assert float(row[f"{column}_mean"]) == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-12)
            assert float(row[f"{column}_std"]) == pytest.approx(statistics.stdev(values), rel=1e-9, abs=1e-12)
        assert 0 < float(row["epoch_time_mean"])
    assert rows["l2 λ=0.01"]["method.weight"] == "0.01"
    header = table_rows(text, "group")[0]
    for title in ("test error", "test acc", "acc gap", "loss gap", "FGSM acc ε=0.5", "PGD acc ε=1", "Π layer σ",
                  "‖∇margin‖ mean", "s/epoch"):
        assert title in header
    assert "## Classifier runs" in text and "## GAN runs" not in text
    for name in ("test_error_vs_epoch", "robust_vs_eps", "bound_vs_pgd"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({name}.png)" in text


def test_generalization_claim_compares_best_strengths_and_cannot_be_supported_on_two_seeds(runs, tmp_path):
    rows, text = report([runs / "pair", runs / "more"], tmp_path)
    best_l2 = min(["l2 λ=0.001", "l2 λ=0.01"], key=lambda label: float(rows[label]["test_error_mean"]))
    claims = table_rows(text, "spectral_reg generalizes better than l2")
    assert [row[2] for row in claims] == ["test error", "acc gap", "loss gap"]
    for (_, _, title, better, worse, *_, p, _, verdict), column in zip(claims,
                                                                      ["test_error", "gap_accuracy", "gap_loss"]):
        assert better.startswith("spectral_reg λ=0.01 (best of 1): ")
        assert worse.startswith(f"{best_l2} (best of 2): ")
        mean = float(worse.split(": ")[1].split(" ± ")[0])
        assert mean == pytest.approx(float(rows[best_l2][f"{column}_mean"]), rel=1e-3)
        # 2 + 2 runs: p >= 1/6, so never "supported"; an interval below 0 still says "not supported".
        assert (p == "-" or float(p) >= 0.166) and verdict in ("inconclusive", "not supported")
    assert "picked on the test set itself" in text and "optimistic" in text


def test_rank_correlation_claim_reports_n_and_an_exact_p(runs, tmp_path):
    _, text = report([runs / "pair"], tmp_path)
    finals = [record for records in final_records(runs / "pair").values() for record in records]
    claims = table_rows(text, "smaller Lipschitz bound → higher accuracy under attack")
    assert [row[2] for row in claims] == ["Π layer σ vs PGD acc ε=0.5", "Π layer σ vs PGD acc ε=1"]
    for (_, _, _, rho, p, n, verdict), eps in zip(claims, ["0.5", "1"]):
        bounds = [record["diag/lipschitz_bound"] for record in finals]
        accuracies = [record[f"robust/pgd_eps{eps}"] for record in finals]
        assert n == "4"
        # 4 runs can never be significant: the exact two-sided p is at least 2/24.
        assert verdict == "inconclusive"
        if len(set(accuracies)) == 1:
            assert rho == p == "-"
            continue
        observed = spearmanr(bounds, accuracies).statistic
        null = [spearmanr(order, accuracies).statistic for order in itertools.permutations(bounds)]
        exact = min(1.0, 2 * min(sum(r <= observed + 1e-12 for r in null), sum(r >= observed - 1e-12 for r in null))
                    / len(null))
        assert float(rho) == pytest.approx(observed, abs=1e-3)
        assert float(p) == pytest.approx(exact, rel=1e-2) and float(p) >= 2 / 24


def test_rank_correlation_verdict_needs_a_significant_sign():
    down, up = list(range(8)), list(range(8, 0, -1))
    assert correlation_verdict(rank_correlation(down, up), 8) == "supported"  # rho = -1, p ~ 2e-4 (random pairings)
    assert correlation_verdict(rank_correlation(down, down), 8) == "not supported"
    # rho = -1 on 3 runs: spearmanr's t approximation says p = 0, the exact p is 1/3.
    rho, p = rank_correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert rho == pytest.approx(-1.0) and p == pytest.approx(1 / 3)
    assert correlation_verdict((rho, p), 3) == "inconclusive"
    assert correlation_verdict((-1.0, 0.001), 2) == "inconclusive"  # n < 3
    assert rank_correlation([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) is None  # undefined on a constant side


def test_gan_and_classifier_runs_get_a_section_each(runs, tmp_path, capsys):
    rows, text = report([runs], tmp_path)
    assert {row["task"] for row in rows.values()} == {"gan", "classify"}
    assert rows["none"]["task"] == "gan" and rows["none"]["final_n"] == "1"
    assert text.index("## GAN runs") < text.index("## Classifier runs") < text.index("## Incomplete runs")
    assert "SN ends with a better final metric than GP" in text  # GAN claims, listed as not covered
    for name in ("metric_vs_epoch", "epoch_time", "test_error_vs_epoch", "bound_vs_pgd"):
        assert (tmp_path / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
    printed = capsys.readouterr().out
    assert "GAN runs: 1 runs in 1 groups" in printed and "Classifier runs: 6 runs in 3 groups" in printed


def test_a_run_of_an_unknown_task_is_one_line_and_exit_2(runs, tmp_path, capsys):
    run_dir = shutil.copytree(run_dirs(runs / "pair")[0], tmp_path / "run")
    summary = read_summary(run_dir)
    summary["config"]["task"]["name"] = "segment"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "task.name=segment" in error
