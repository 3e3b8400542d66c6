"""lipbench-report on the run dirs of sweeps with known curves (written here, no training): the "Swept:" line, the
half-run threshold and epochs to it, claims on matched settings, one-run cells, figures and report.html, which is
also rendered in headless Chromium."""
import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from lipbench.report import main
from lipbench.report.figures import Palette, value_scale
from lipbench.report.runs import find_runs, group_runs
from tests.conftest import PNG_SIGNATURE

# W1 per epoch (4 epochs) of each gp / gp_relu strength. gp_relu λ=10 ends lowest, and had 0.5 at epoch 2 (half its
# run): that is the default threshold, which the groups reach at epochs 3, 4, never, 3, 2 and 1.
CURVES = {
    ("gp", 1): [1.2, 0.8, 0.5, 0.45], ("gp", 10): [1.1, 0.9, 0.7, 0.5], ("gp", 100): [5.0, 4.0, 3.0, 2.0],
    ("gp_relu", 1): [0.9, 0.6, 0.5, 0.35], ("gp_relu", 10): [1.0, 0.5, 0.4, 0.3],
    ("gp_relu", 100): [0.5, 0.45, 0.4, 0.38],
}
EPOCHS_TO_THRESHOLD = {"gp λ=1": "3.0", "gp λ=10": "4.0", "gp λ=100": "", "gp_relu λ=1": "3.0", "gp_relu λ=10": "2.0",
                       "gp_relu λ=100": "1.0"}
TARGETS = {"gp": "lipbench.methods.GradientPenalty", "gp_relu": "lipbench.methods.GradientPenalty",
           "sn": "lipbench.methods.SpectralNormalization"}


def write_run(run_dir: Path, method: str, setting: tuple[str, float] | None, seed: int, w1: list[float],
              samples: bool = False) -> None:
    """A finished toy run as `lipbench` leaves it: summary.json, metrics.jsonl and, optionally, a sample figure."""
    settings = dict([setting]) if setting else {}
    overrides = [f"method={method}", *(f"method.{k}={v:g}" for k, v in settings.items()), f"seed={seed}"]
    records = [{"epoch": e, "loss/critic": -1.0 / e - settings.get("weight", 0) * 0.01, "loss/generator": 0.5 / e,
                "wasserstein_estimate": 1.0 / e, "penalty": settings.get("weight", 0) * 0.01 / e,
                "time/epoch_s": 0.5, "time/train_s": 0.5 * e, "eval/w1": value}
               for e, value in enumerate(w1, start=1)]
    config = {"method": {"_target_": TARGETS[method], "name": method, **settings}, "seed": seed,
              "task": {"name": "gan"}, "train": {"epochs": len(w1)}}
    summary = {"status": "complete", "metric": "w1", "final_metric": w1[-1], "best_metric": min(w1),
               "best_epoch": int(np.argmin(w1)) + 1, "overrides": overrides, "config": config,
               "wandb": {"name": " ".join(overrides), "group": "synthetic"}}
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if samples:
        fig, ax = plt.subplots(figsize=(3, 3))
        ax.scatter(*np.random.default_rng(seed).normal(size=(2, 200)), s=4, color="tab:green")
        (run_dir / "figures").mkdir()
        fig.savefig(run_dir / "figures" / f"epoch_{len(w1):04d}.png")
        plt.close(fig)


def gp_sweep(root: Path, seeds=(0,), samples=False) -> Path:
    """`method=gp,gp_relu method.weight=1,10,100` with the CURVES above (the same for every seed)."""
    for i, ((method, weight), w1) in enumerate(CURVES.items()):
        for seed in seeds:
            write_run(root / f"{i}_{seed}", method, ("weight", weight), seed, w1, samples)
    return root


def report(paths, out, *args) -> tuple[dict[str, dict], str]:
    """Run the command; return report.csv's rows by group and report.md's text."""
    main([*map(str, paths), "--out", str(out), *args])
    with open(out / "report.csv") as f:
        return {row["group"]: row for row in csv.DictReader(f)}, (out / "report.md").read_text()


def claim_rows(text: str, claim: str) -> list[list[str]]:
    """The cells of report.md's claim rows of `claim`."""
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {claim} |")]


def test_swept_line_names_what_varies_with_its_values(tmp_path):
    _, text = report([gp_sweep(tmp_path / "gp")], tmp_path / "gp_report")
    assert "Swept: method (gp, gp_relu); method.weight (1, 10, 100). Seeds: 0." in text
    for iterations in (1, 2, 5):
        write_run(tmp_path / "sn" / str(iterations), "sn", ("power_iterations", iterations), 0, [1.0, 0.8])
    _, text = report([tmp_path / "sn"], tmp_path / "sn_report")
    # Only the iteration count varied: the method did not.
    assert "Swept: method.power_iterations (1, 2, 5). Seeds: 0." in text


def test_default_threshold_is_the_best_groups_half_run_level_and_tells_groups_apart(tmp_path):
    rows, text = report([gp_sweep(tmp_path / "runs")], tmp_path / "report")
    assert "Threshold: 0.5, the mean of the best group (gp_relu λ=10) at epoch 2 of 4." in text
    assert {group: row["epochs_to_threshold_mean"] for group, row in rows.items()} == EPOCHS_TO_THRESHOLD
    assert {row["seconds_to_threshold_mean"] for row in rows.values()} == {"1.5", "2.0", "", "1.0", "0.5"}
    assert "| gp λ=100 | 1 | 1 | 0/1 (0%) | 2 (n=1) | 2 (n=1) | never (1/1 runs) | never (1/1 runs) |" in text
    rows, text = report([tmp_path / "runs"], tmp_path / "fixed", "--threshold", "0.45")
    assert "Threshold: 0.45, set by --threshold." in text
    assert rows["gp λ=1"]["epochs_to_threshold_mean"] == "4.0" and rows["gp λ=10"]["epochs_to_threshold_mean"] == ""


def test_one_run_cells_show_the_value_without_a_spread(tmp_path):
    _, text = report([gp_sweep(tmp_path / "runs")], tmp_path / "report")
    assert "± 0" not in text and "0.45 (n=1)" in text
    _, text = report([gp_sweep(tmp_path / "two", seeds=(0, 1))], tmp_path / "two_report")
    assert "0.45 ± 0 (n=2)" in text  # two runs: the spread is measured, and here it is 0


def test_claims_pair_equal_strengths_and_each_methods_best(tmp_path):
    _, text = report([gp_sweep(tmp_path / "runs", seeds=(0, 1, 2, 3))], tmp_path / "report")
    rows = claim_rows(text, "gp_relu (one-sided penalty) ends better than gp")
    pairs = [(row[3].split(":")[0], row[4].split(":")[0]) for row in rows]
    assert pairs == [("gp_relu λ=1", "gp λ=1"), ("gp_relu λ=10", "gp λ=10"), ("gp_relu λ=100", "gp λ=100"),
                     ("gp_relu λ=10 (best of 3)", "gp λ=1 (best of 3)")]
    # Four seeds of identical curves: every gp_relu run below every gp run, p = 1/C(8, 4) = 1/70.
    assert [row[-5:] for row in rows] == [["0.1", "[0.1, 0.1]", "0.0143", "∞", "supported"],
                                          ["0.2", "[0.2, 0.2]", "0.0143", "∞", "supported"],
                                          ["1.62", "[1.62, 1.62]", "0.0143", "∞", "supported"],
                                          ["0.15", "[0.15, 0.15]", "0.0143", "∞", "supported"]]
    epochs = claim_rows(text, "gp_relu reaches the threshold in fewer epochs than gp")
    # Never reaching it is the strongest evidence of slowness: those runs count at their last epoch (4), not missing.
    assert epochs[2][3:] == ["gp_relu λ=100: 1 ± 0 (n=4)", "gp λ=100: never (4/4 runs)", "3", "[3, 3]", "0.0143", "∞",
                             "supported"]


def test_a_method_at_one_setting_meets_every_strength_of_the_other(tmp_path):
    write_run(tmp_path / "sn", "sn", None, 0, [0.9, 0.4])
    for weight in (1, 10):
        write_run(tmp_path / f"gp{weight}", "gp", ("weight", weight), 0, [1.0, 0.5 * weight])
    _, text = report([tmp_path], tmp_path / "report")
    pairs = [(row[3].split(":")[0], row[4].split(":")[0])
             for row in claim_rows(text, "SN ends with a better final metric than GP")]
    assert pairs == [("sn", "gp λ=1"), ("sn", "gp λ=10"), ("sn", "gp λ=1 (best of 2)")]


def test_methods_that_vary_unrelated_settings_meet_only_at_their_best(tmp_path):
    for iterations in (1, 5):
        write_run(tmp_path / f"sn{iterations}", "sn", ("power_iterations", iterations), 0, [0.9, 0.4])
    for weight in (1, 10):
        write_run(tmp_path / f"gp{weight}", "gp", ("weight", weight), 0, [1.0, 0.5])
    _, text = report([tmp_path], tmp_path / "report")
    rows = claim_rows(text, "SN ends with a better final metric than GP")
    assert [(row[3].split(":")[0], row[4].split(":")[0]) for row in rows] == [
        ("sn power_iterations=1 (best of 2)", "gp λ=1 (best of 2)")]


def test_each_method_keeps_one_colour_and_each_strength_a_line_style(tmp_path):
    _, groups = group_runs(find_runs([gp_sweep(tmp_path)])[0])
    palette = Palette(groups)
    looks = {group.label: palette.line(group) for group in groups}
    assert len({looks[f"gp λ={w}"]["color"] for w in (1, 10, 100)}) == 1
    assert looks["gp λ=1"]["color"] != looks["gp_relu λ=1"]["color"]
    assert len({looks[f"gp λ={w}"]["linestyle"] for w in (1, 10, 100)}) == 3
    assert looks["gp λ=10"]["linestyle"] == looks["gp_relu λ=10"]["linestyle"]


@pytest.mark.parametrize("values, scale", [
    ([0.5, 0.8, 1.2], "linear"),
    ([0.05, 0.5, 2.0], "log"),             # positive, over a decade
    ([-0.5, -0.4, 0.3, 8.0], "symlog"),    # one curve far above the typical value
    ([-0.5, -0.2, 0.1, 0.4], "linear"),    # signed, but of one size
    ([0.0, 0.0], "linear"),                # nothing to scale
])
def test_value_axis_turns_logarithmic_only_over_a_decade(values, scale):
    fig, ax = plt.subplots()
    value_scale(ax, values)
    assert ax.get_yscale() == scale
    plt.close(fig)


def test_report_html_is_one_page_with_every_figure_embedded(tmp_path):
    _, text = report([gp_sweep(tmp_path / "runs", samples=True)], tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text()
    sources = re.findall(r'<img src="([^"]*)"', html)
    figures = ["training_curves", "metric_vs_epoch", "metric_vs_time", "epoch_time"]
    assert len(sources) == len(figures) + len(CURVES)  # the figures, then a sample grid per group
    assert all(src.startswith("data:image/png;base64,") for src in sources)
    for name in figures:
        assert (tmp_path / "report" / f"{name}.png").read_bytes().startswith(PNG_SIGNATURE)
        assert f"]({name}.png)" in text
    assert "<table>" in html and "gp_relu λ=10: seed 0, w1 0.3" in html


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Headless Chromium (Debian's package; `make install` installs it) with a throwaway profile."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed: `make install` installs it (apt-get install chromium)"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={cwd / 'profile'}", "--hide-scrollbars"]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=True)


# Added to a copy of the page only: after load it writes every image's box and decoded width into the title,
# which --dump-dom prints; the page's layout is unchanged.
MEASURE = """<script>window.addEventListener("load", () => { document.title = JSON.stringify({
  height: document.documentElement.scrollHeight,
  images: [...document.images].map(i => { const r = i.getBoundingClientRect();
    return [r.left, r.top + window.scrollY, r.width, r.height, i.naturalWidth]; })}); });</script>"""


@pytest.mark.slow  # two Chromium starts, ~10 s on a busy machine
def test_report_html_renders_every_figure_in_headless_chromium(tmp_path):
    report([gp_sweep(tmp_path / "runs", samples=True)], tmp_path / "report")
    page = tmp_path / "report" / "report.html"
    measured = tmp_path / "measure.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    width = 1400
    dom = chromium("--window-size=1400,3000", "--dump-dom", measured.as_uri(), cwd=tmp_path).stdout
    layout = json.loads(re.search(r"<title>(.*?)</title>", dom, re.S).group(1).replace("&quot;", '"'))
    assert len(layout["images"]) == 4 + len(CURVES)
    height = layout["height"]
    shot = tmp_path / "report.png"
    chromium(f"--window-size={width},{height}", f"--screenshot={shot}", page.as_uri(), cwd=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (height, width)
    background = pixels[5, width - 5]
    assert (np.abs(pixels - background).sum(axis=2) > 60).mean() > 0.05, "the page is (nearly) blank"
    for left, top, box_width, box_height, natural_width in layout["images"]:
        assert natural_width > 0, "an embedded image did not decode"
        assert box_width > 150 and box_height > 150
        region = pixels[int(top) + 2:int(top + box_height) - 2, int(left) + 2:int(left + box_width) - 2]
        assert region.size, "an image lies outside the screenshot"
        # A figure has ink: lines, labels and markers (every plot background here is white).
        assert (np.abs(region - [255, 255, 255]).sum(axis=2) > 100).mean() > 0.01


def paper_run(run_dir: Path, method: str, loss: str, seed: int, fid: list[float], **settings) -> None:
    """A finished run at the SNGAN paper's CIFAR-10 setting (as `lipbench scale=paper` writes it), FID per epoch."""
    write_run(run_dir, method, None, seed, fid)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["metric"], summary["overrides"] = "fid", [*summary["overrides"], f"loss={loss}", "scale=paper"]
    summary["config"].update(dataset={"name": "cifar10"}, model={"name": "dcgan"}, loss={"name": loss},
                             scale={"name": "paper"})
    summary["config"]["method"].update(settings)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({**{k: v for k, v in r.items() if k != "eval/w1"},
                                                              "eval/fid": r["eval/w1"]}) + "\n" for r in records))


def test_a_run_at_a_published_setting_shows_the_published_number_beside_its_own(tmp_path):
    for seed in (0, 1):
        paper_run(tmp_path / "runs" / f"sn{seed}", "sn", "ns", seed, [60.0, 31.0 + seed], power_iterations=1)
        paper_run(tmp_path / "runs" / f"gp{seed}", "gp", "wasserstein", seed, [70.0, 41.0], weight=10.0,
                  one_sided=False)
        # The published WGAN-GP used the Wasserstein loss: gp with the hinge loss matches no published row.
        paper_run(tmp_path / "runs" / f"gp_hinge{seed}", "gp", "hinge", seed, [70.0, 45.0], weight=10.0,
                  one_sided=False)
    rows, text = report([tmp_path / "runs"], tmp_path / "report")
    header = next(line for line in text.splitlines() if line.startswith("| group |"))
    assert "| final | published | best |" in header
    lines = [line for line in text.splitlines() if line.startswith(("| gp ", "| sn "))]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    published = {row[0]: row[5] for row in cells}
    assert published == {"gp loss=wasserstein": "40.2 (SNGAN Table 2: WGAN-GP)", "gp loss=hinge": "-",
                         "sn loss=ns": "29.3 (SNGAN Table 2: (ours) SN-GANs)"}
    assert rows["sn loss=ns"]["published"] == "29.3" and rows["gp loss=hinge"]["published"] == ""
    assert "published: Miyato, Kataoka, Koyama, Yoshida 2018" in text and "Table 2, column FID / CIFAR-10" in text
    # A toy run matches nothing: no published column at all.
    _, toy = report([gp_sweep(tmp_path / "toy")], tmp_path / "toy_report")
    assert "published" not in toy


def test_each_method_at_its_own_loss_is_still_compared_and_a_logger_key_splits_nothing(tmp_path):
    """The SN paper's protocol: SN-GANs at hinge, WGAN-GP at the Wasserstein loss. The loss is part of each group,
    not a context that would keep the two apart; a W&B group set on the command line changes no result."""
    for seed in range(5):
        paper_run(tmp_path / "runs" / f"sn{seed}", "sn", "hinge", seed, [60.0, 30.0 + seed], power_iterations=1)
        paper_run(tmp_path / "runs" / f"gp{seed}", "gp", "wasserstein", seed, [70.0, 40.0 + seed], weight=10.0,
                  one_sided=False)
        summary_path = tmp_path / "runs" / f"sn{seed}" / "summary.json"
        summary = json.loads(summary_path.read_text())
        summary["overrides"].append("logger.wandb.group=sn-hinge")
        summary_path.write_text(json.dumps(summary))
    rows, text = report([tmp_path / "runs"], tmp_path / "report")
    assert set(rows) == {"sn loss=hinge", "gp loss=wasserstein"}
    assert "Swept: method (gp, sn); loss (hinge, wasserstein). Seeds: 0, 1, 2, 3, 4." in text
    [row] = claim_rows(text, "SN ends with a better final metric than GP")
    assert row[1:5] == ["all runs", "final", "sn loss=hinge: 32 ± 1.6 (n=5)", "gp loss=wasserstein: 42 ± 1.6 (n=5)"]
    assert float(row[5]) == pytest.approx(10.0) and row[-1] == "supported"


def test_many_modes_report_draws_the_noise_floor_and_tests_the_growing_gap(tmp_path):
    floors = {8: 0.073, 25: 0.10, 64: 0.097}
    for modes, floor in floors.items():
        for seed in range(5):
            # SN ends at 2x the floor at every count; GP's gap grows by ~0.1 a doubling, with seed noise.
            finals = {"sn": 2 * floor, "gp": 2 * floor + 0.1 * (modes / 8) ** 0.5 + 0.01 * seed}
            for method, final in finals.items():
                run_dir = tmp_path / "runs" / f"{method}_{modes}_{seed}"
                write_run(run_dir, method, None, seed, [final + 0.5, final])
                summary = json.loads((run_dir / "summary.json").read_text())
                summary["overrides"].append(f"dataset.modes={modes}")
                summary["config"]["dataset"] = {"name": "toy2d", "distribution": "ring_mixture", "modes": modes}
                summary["protocol"] = {"w1/noise_floor": floor, "w1/num_generated": 2000}
                (run_dir / "summary.json").write_text(json.dumps(summary))
    rows, text = report([tmp_path / "runs"], tmp_path / "report")
    assert ("Noise floor (the mean exact W1 between two independent real samples of the evaluation size; a generator "
            "of the data scores it on average, one that blurs modes the sample cannot resolve may score below it): "
            "ring_mixture with 8 modes, 2000 points: 0.073; ring_mixture with 25 modes, 2000 points: 0.1; "
            "ring_mixture with 64 modes, 2000 points: 0.097.") in text
    assert float(rows["sn dataset.modes=64"]["final_over_floor_mean"]) == pytest.approx(2.0)
    (trend,) = claim_rows(text, "GP's quality gap to SN grows with the number of modes (classes)")
    assert trend[1] == "all runs" and trend[2].startswith("8: 0.12 (n=5), 25: 0.197 (n=5), 64: 0.303 (n=5)")
    # The gap is 0.1 * sqrt(modes / 8) + 0.02 on average: its least-squares slope against log2(modes) is ~0.060.
    assert float(trend[3]) == pytest.approx(0.0605, abs=1e-3) and trend[-1] == "supported"
    assert "slope of the mean gap against log2(modes)" in text
    assert (tmp_path / "report" / "metric_vs_epoch.png").read_bytes().startswith(PNG_SIGNATURE)


def test_many_classes_report_tests_the_conditional_gap_against_the_unconditional_one(tmp_path):
    for modes in (8, 64):
        for conditional in (False, True):
            for seed in range(5):
                # SN ends at 0.1 everywhere; GP's gap is 0.1 unconditional, 0.4 conditional (+0.2 more at 64 modes).
                gap = (0.4 if conditional else 0.1) + (0.2 if conditional and modes == 64 else 0.0)
                for method, final in {"sn": 0.1, "gp": 0.1 + gap + 0.01 * seed}.items():
                    run_dir = tmp_path / "runs" / f"{method}_{modes}_{conditional}_{seed}"
                    write_run(run_dir, method, None, seed, [final + 0.5, final])
                    summary = json.loads((run_dir / "summary.json").read_text())
                    summary["overrides"] += [f"dataset.modes={modes}", f"task.conditional={str(conditional).lower()}"]
                    summary["config"]["dataset"] = {"name": "toy2d", "distribution": "ring_mixture", "modes": modes}
                    summary["config"]["task"]["conditional"] = conditional
                    (run_dir / "summary.json").write_text(json.dumps(summary))
    _, text = report([tmp_path / "runs"], tmp_path / "report")
    rows = claim_rows(text, "GP's quality gap to SN is larger in conditional than in unconditional generation")
    assert [row[1] for row in rows] == ["dataset.modes=8", "dataset.modes=64"]
    for row, difference in zip(rows, (0.3, 0.5)):
        assert row[2].startswith("unconditional: 0.12 (n=5), conditional: ")
        assert float(row[3]) == pytest.approx(difference, abs=1e-4) and row[-1] == "supported"
    # The growth with the number of classes, in each mode of generation: flat unconditional, +0.2 conditional.
    growth = {row[1]: row for row in claim_rows(text, "GP's quality gap to SN grows with the number of modes "
                                                      "(classes)")}
    assert float(growth["task.conditional=True"][3]) == pytest.approx(0.2 / 3, abs=1e-4)  # per doubling: 8 -> 64 is 3
    assert growth["task.conditional=True"][-1] == "supported"
    assert float(growth["task.conditional=False"][3]) == pytest.approx(0.0, abs=1e-4)
    assert growth["task.conditional=False"][-1] != "supported"
    assert "| Δ conditional − unconditional |" in text and "| slope per doubling |" in text


def test_runs_with_a_sigma_estimate_get_its_error_and_sigma_over_training_and_others_do_not(tmp_path):
    for seed in (0, 1):
        run_dir = tmp_path / "sn" / str(seed)
        write_run(run_dir, "sn", ("power_iterations", 1), seed, [1.0, 0.6, 0.4])
        records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        for r in records:  # an underestimate shrinking over training, and the resulting sigma above 1
            r.update({"diag/sigma_hat_error/net.0": -0.04 / r["epoch"], "diag/sigma_hat_error/net.2": -0.001,
                      "diag/sigma/net.0": 1 + 0.04 / r["epoch"], "diag/sigma/net.2": 1.001,
                      "diag/lipschitz_bound": 1.0})
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows, text = report([tmp_path / "sn"], tmp_path / "report")
    assert (tmp_path / "report" / "sigma_estimates.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "](sigma_estimates.png)" in text
    assert float(rows["sn"]["max_sigma_hat_error_mean"]) == pytest.approx(0.04, abs=1e-12)
    assert float(rows["sn"]["max_layer_sigma_mean"]) == pytest.approx(1 + 0.04 / 3, abs=1e-12)  # at the last epoch
    _, text = report([gp_sweep(tmp_path / "gp")], tmp_path / "gp_report")
    assert not (tmp_path / "gp_report" / "sigma_estimates.png").exists() and "sigma_estimates" not in text
