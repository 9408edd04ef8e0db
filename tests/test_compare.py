"""`dreamlab compare`: statistics against hand-computed values on hand-made run directories."""

import csv
import datetime
import json
import struct

import numpy as np
import pytest
import yaml

from dreamlab.analyze import stats
from dreamlab.analyze.command import compare
from dreamlab.analyze.report import render
from dreamlab.analyze.runs import load_run_dir, resolve_resumes
from dreamlab.analyze.sources import load_runs
from dreamlab.analyze.summarize import CompareError, Options, summarize
from dreamlab.analyze.verdict import (
    CANNOT_TELL,
    CONTRADICTED,
    SUPPORTED,
    bootstrap_difference_ci,
    inconclusive,
    judge,
)
from dreamlab.cli import main

T0 = 1_800_000_000.0
METRIC = "eval/return_mean"


def stamp(unix: float) -> str:
    return datetime.datetime.fromtimestamp(unix).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


def make_run(path, evals, *, seed=0, lr=1e-3, expect="", summary=True, train_rows=(), resumes=(), tail=""):
    """A run directory. evals: (env_step, unix_time, train_seconds, value); train_rows: (step, time, loss)."""
    path.mkdir(parents=True)
    config = {"seed": seed, "threads": 1, "run": {"name": "", "dir": str(path.parent), "expect": expect,
                                                  "hypothesis": "lr matters" if expect else "",
                                                  "primary_metric": METRIC, "threshold": None},
              "agent": {"name": "iqn", "lr": lr}, "env": {"id": "CartPole-v1"}}
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    info = {"hypothesis": config["run"]["hypothesis"], "expect": expect, "primary_metric": METRIC,
            "threshold": None, "seed": seed, "resumes": [{"time": stamp(t), "overrides": []} for t in resumes]}
    (path / "run.json").write_text(json.dumps(info))
    rows = [{"step": s, "time": t, "loss/td": v} for s, t, v in train_rows]
    rows += [{"step": s, "time": t, METRIC: v, "env/steps": float(s)} for s, t, _, v in evals]
    rows.sort(key=lambda r: r["time"])
    text = "".join(json.dumps(r) + "\n" for r in rows) + tail
    (path / "metrics.jsonl").write_text(text)
    if summary:
        (path / "summary.json").write_text(json.dumps(
            {"end_state": "completed", "evals": [[s, secs, v] for s, _, secs, v in evals]}))
    return path


STEADY = [(100, T0 + 1, 1.0, 10.0), (200, T0 + 2, 2.0, 200.0), (300, T0 + 3, 3.0, 480.0),
          (400, T0 + 4, 4.0, 300.0), (500, T0 + 5, 5.0, 490.0)]


# ---- pure statistics against hand-computed values -----------------------------------------------


def test_best_crossing_final():
    values = np.array([1.0, 3.0, 2.0, 3.0])
    assert stats.best_index(values) == 1  # the first of two equal peaks
    assert stats.best_index(np.array([np.nan, 2.0, np.nan])) == 1
    assert stats.best_index(np.array([np.nan])) is None
    assert stats.first_crossing(np.array([1.0, 5.0, 3.0, 6.0]), 5.0) == 1  # >= counts as crossing
    assert stats.first_crossing(np.array([1.0, 4.9]), 5.0) is None
    assert stats.final_value(np.array([1.0, 7.0, np.nan])) == 7.0


def test_max_drop_and_area():
    assert stats.max_drop(np.array([1.0, 4.0, 2.0, 5.0, 1.0])) == 4.0  # 5 -> 1
    assert stats.max_drop(np.array([1.0, 2.0, 3.0])) == 0.0
    # trapezoids: (0+10)/2*10 + (10+10)/2*20 = 250 over a span of 30
    assert stats.area_under_curve(np.array([0.0, 10.0, 30.0]), np.array([0.0, 10.0, 10.0])) == pytest.approx(250 / 30)
    assert stats.area_under_curve(np.array([5.0]), np.array([3.0])) == 3.0
    assert stats.area_under_curve(np.zeros(0), np.zeros(0)) is None


def test_stability_after_crossing():
    after = stats.stability_after(np.array([0.0, 5.0, 3.0, 6.0, 4.0]), 5.0, crossing=1)
    assert after["share_above"] == pytest.approx(1 / 3)  # 3, 6, 4: only 6 holds
    assert after["min_after"] == 3.0
    assert after["drop_after"] == 2.0  # 5 -> 3 and 6 -> 4
    last = stats.stability_after(np.array([0.0, 5.0]), 5.0, crossing=1)
    assert last["share_above"] is None and last["min_after"] is None and last["drop_after"] == 0.0


def test_ratio_and_mean():
    assert stats.ratio(3.0, 2.0) == 1.5
    assert stats.ratio(3.0, 0.0) is None and stats.ratio(None, 1.0) is None
    assert stats.mean_or_none([1.0, None, 3.0]) == 2.0 and stats.mean_or_none([None]) is None


# ---- one run's row --------------------------------------------------------------------------------


def test_run_statistics_by_hand(tmp_path):
    run = load_run_dir(make_run(tmp_path / "a", STEADY), [METRIC])
    summary = summarize([run], Options(metric=METRIC, threshold=475.0))
    row = summary.runs[0]
    assert (row["best"], row["best_step"], row["best_wall"]) == (490.0, 500.0, 5.0)
    assert (row["threshold_step"], row["threshold_wall"]) == (300.0, 3.0)  # 480 is the first >= 475
    assert row["final"] == 490.0 and row["crossed"] is True
    assert row["share_above"] == 0.5 and row["min_after"] == 300.0  # after 480: 300, 490
    assert row["drop_after"] == 180.0 and row["max_drop"] == 180.0  # 480 -> 300
    # (10+200)/2*100 + (200+480)/2*100 + (480+300)/2*100 + (300+490)/2*100 = 123000 over 400 steps
    assert row["auc"] == pytest.approx(307.5)


def test_run_that_never_crosses(tmp_path):
    low = [(s, t, secs, min(v, 400.0)) for s, t, secs, v in STEADY]
    row = summarize([load_run_dir(make_run(tmp_path / "low", low), [METRIC])], Options(threshold=475.0)).runs[0]
    assert row["crossed"] is False
    assert row["threshold_step"] is None and row["threshold_wall"] is None
    assert row["share_above"] is None and row["min_after"] is None
    assert row["best"] == 400.0 and row["best_step"] == 300.0


def test_crashed_run_uses_time_column_and_skips_cut_line(tmp_path):
    evals = [(100, T0 + 4, None, 10.0), (200, T0 + 9, None, 30.0)]
    path = make_run(tmp_path / "crashed", evals, summary=False, train_rows=[(50, T0 + 1, 0.5), (150, T0 + 6, 0.4)],
                    tail='{"step": 250, "time": 18000000')
    run = load_run_dir(path, [METRIC, "loss/td"])
    curve = run.curves[METRIC]
    assert curve.steps.tolist() == [100, 200]
    assert curve.wall.tolist() == [3.0, 8.0]  # seconds since the first row (at T0 + 1)
    assert run.end_state.startswith("no summary")
    row = summarize([run], Options(threshold=25.0, also=["loss/td"])).runs[0]
    assert row["threshold_wall"] == 8.0 and row["loss/td"] == 0.4


def test_resumed_run_drops_superseded_rows_and_the_pause(tmp_path):
    # first attempt: evals at 300, 600, 900, then a crash; resumed 91 s later from the 600 checkpoint
    evals = [(300, T0 + 3, None, 1.0), (600, T0 + 6, None, 2.0), (900, T0 + 9, None, 3.0),
             (900, T0 + 102, None, 30.0), (1200, T0 + 105, None, 40.0)]
    path = make_run(tmp_path / "resumed", evals, summary=False, train_rows=[(10, T0, 0.1)], resumes=[T0 + 100])
    curve = load_run_dir(path, [METRIC]).curves[METRIC]
    assert curve.steps.tolist() == [300, 600, 900, 1200]
    assert curve.values.tolist() == [1.0, 2.0, 30.0, 40.0]
    assert curve.wall.tolist() == [3.0, 6.0, 8.0, 11.0]  # the 91 s pause is not training time


def test_step_going_back_without_a_resume_record():
    rows = [(1.0, 10.0, 1.0), (2.0, 11.0, 2.0), (3.0, 12.0, 3.0), (2.0, 50.0, 20.0), (3.0, 51.0, 30.0)]
    kept = resolve_resumes(rows, [])
    assert [r[0] for r in kept] == [1.0, 2.0, 3.0] and [r[2] for r in kept] == [1.0, 20.0, 30.0]
    # without a resume record the restart point is unknown: the segment starts at the last kept row's time
    assert [r[1] for r in kept] == [10.0, 10.0, 11.0]


def test_a_resume_before_the_first_row_of_the_metric_does_not_stall():
    """A metric first logged after the run was resumed (a short first attempt): the rows are kept as they are."""
    rows = [(100.0, 20.0, 1.0), (200.0, 21.0, 2.0)]
    kept = resolve_resumes(rows, [5.0, 15.0])
    assert [(r[0], r[2]) for r in kept] == [(100.0, 1.0), (200.0, 2.0)]


# ---- groups, baseline, verdicts ---------------------------------------------------------------------


def shifted(delta, every=100):
    return [(s, T0 + s / 100, s / 100, 100.0 + delta + s / 10) for s in range(every, 501, every)]


def make_groups(tmp_path, delta=200.0, seeds=(0, 1, 2)):
    for seed in seeds:
        make_run(tmp_path / f"base_s{seed}", shifted(seed), seed=seed, lr=1e-3)
        # the treatment's seeds evaluate on another schedule
        make_run(tmp_path / f"new_s{seed}", shifted(delta + seed, every=50), seed=seed, lr=3e-4,
                 expect="eval/return_mean up")
    return tmp_path


def test_groups_by_config_minus_seed_with_baseline_ratios(tmp_path):
    make_groups(tmp_path)
    runs = load_runs([str(tmp_path)], [METRIC])
    summary = summarize(runs, Options(threshold=250.0, baseline="agent.lr=0.001"))
    labels = sorted(g["name"] for g in summary.groups)
    assert labels == ["agent.lr=0.0003", "agent.lr=0.001"]
    new = next(g for g in summary.groups if g["name"] == "agent.lr=0.0003")
    base = next(g for g in summary.groups if g["name"] == "agent.lr=0.001")
    assert base["n"] == 3 and base["best"] == pytest.approx(151.0)  # 100 + seed + 50, mean over 0, 1, 2
    assert new["best"] == pytest.approx(351.0) and new["crossed"] == "3/3"
    assert base["crossed"] == "0/3" and base["threshold_step"] is None
    assert new["ratios"]["best"] == pytest.approx(351.0 / 151.0)
    assert base["ratios"]["best"] == 1.0
    assert [v.verdict for v in summary.verdicts] == [SUPPORTED]


def test_baseline_named_by_a_run_path_and_group_by(tmp_path):
    make_groups(tmp_path)
    runs = load_runs([str(tmp_path)], [METRIC])
    summary = summarize(runs, Options(baseline=str(tmp_path / "base_s1"), group_by=["agent.lr"]))
    assert summary.baseline == "agent.lr=0.001"
    with pytest.raises(CompareError, match="--baseline nothing"):
        summarize(runs, Options(baseline="nothing"))


def test_verdict_known_difference_none_and_one_seed():
    assert judge("g", "eval/return_mean up", [10, 11, 12, 13], [0, 1, 2, 3]).verdict == SUPPORTED
    assert judge("g", "steps_to_threshold down", [10, 11, 12, 13], [0, 1, 2, 3]).verdict == CONTRADICTED
    assert judge("g", "best up", [1, 2, 3, 4], [1, 2, 3, 4]).verdict == CANNOT_TELL
    single = judge("g", "best up", [100], [0, 1, 2])
    assert single.verdict == inconclusive(1) == "inconclusive: n=1"
    assert single.difference == 99.0 and single.low is None and single.p_value is None


def test_bootstrap_interval():
    assert bootstrap_difference_ci(np.array([5.0, 5.0]), np.array([2.0, 2.0])) == (3.0, 3.0)
    low, high = bootstrap_difference_ci(np.array([0.0, 10.0]), np.array([0.0, 0.0]))
    assert (low, high) == (0.0, 10.0)  # resampled means of {0, 10} are 0, 5 or 10
    assert bootstrap_difference_ci(np.array([1.0, 3.0]), np.array([0.0, 1.0])) == \
        bootstrap_difference_ci(np.array([1.0, 3.0]), np.array([0.0, 1.0]))  # seeded


def test_steps_to_threshold_verdict_counts_a_run_that_never_crossed_as_its_budget(tmp_path):
    make_groups(tmp_path, delta=200.0)
    for seed in (0, 1, 2):
        info = json.loads((tmp_path / f"new_s{seed}" / "run.json").read_text())
        info["expect"] = "steps_to_threshold down"
        (tmp_path / f"new_s{seed}" / "run.json").write_text(json.dumps(info))
    runs = load_runs([str(tmp_path)], [METRIC])
    verdict = summarize(runs, Options(threshold=250.0, baseline="agent.lr=0.001")).verdicts[0]
    assert verdict.verdict == SUPPORTED and verdict.difference < 0 and "never crossed" in verdict.note


# ---- output, plot, command line ------------------------------------------------------------------


def test_formats(tmp_path):
    make_groups(tmp_path)
    text, summary = compare([str(tmp_path)], Options(threshold=250.0, baseline="agent.lr=0.001"), {}, "json")
    data = json.loads(text)
    assert len(data["runs"]) == 6 and len(data["groups"]) == 2 and data["verdicts"][0]["verdict"] == SUPPORTED
    csv_lines = render(summary, "csv").splitlines()
    assert csv_lines[0].startswith("kind,name,") and len(csv_lines) == 1 + 6 + 2
    markdown = render(summary, "markdown")
    assert "| run / group | n | best |" in markdown and "verdict [agent.lr=0.0003 vs agent.lr=0.001]" in markdown
    table = render(summary, "table")
    assert "groups (mean over runs)" in table and "supported" in table


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_cli_compare_plot_and_errors(tmp_path, capsys):
    make_groups(tmp_path / "runs")
    plot = tmp_path / "out" / "curves.png"
    code = main(["compare", str(tmp_path / "runs"), "--threshold", "250", "--baseline", "agent.lr=0.001",
                 "--plot", str(plot), "--format", "markdown", "--x", "wall"])
    assert code == 0
    assert "auc (wall)" in capsys.readouterr().out
    assert png_size(plot) == (800, 500)
    plot.unlink()
    assert main(["compare", str(tmp_path / "nowhere"), "--plot", str(plot)]) == 1
    assert capsys.readouterr().err.startswith("dreamlab: error: ")
    assert main(["compare", str(tmp_path / "runs"), "--baseline", "x", "--plot", str(plot)]) == 1
    assert not plot.exists()  # bad input writes nothing


def test_tensorboard_run_with_map(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "sb3" / "PPO_1"))
    for step, value in [(1000, 20.0), (2000, 120.0), (3000, 500.0)]:
        writer.add_scalar("rollout/ep_rew_mean", value, global_step=step)
    writer.close()
    make_run(tmp_path / "ours", STEADY)
    text, summary = compare([str(tmp_path / "sb3"), str(tmp_path / "ours")], Options(threshold=475.0),
                            {"rollout/ep_rew_mean": METRIC}, "json")
    theirs = next(r for r in summary.runs if r["name"] == "PPO_1")
    assert (theirs["best"], theirs["best_step"], theirs["threshold_step"]) == (500.0, 3000.0, 3000.0)
    assert len(summary.groups) == 2


def test_train_writes_curves_png(tiny):
    import dreamlab

    result = dreamlab.train(tiny, quiet=True)  # `dreamlab train` runs this function too
    assert png_size(result.run_dir / "curves.png") == (800, 500)


def test_a_plotting_failure_does_not_fail_the_run(tmp_path, capsys):
    from dreamlab.analyze.plot import write_curves
    from dreamlab.config.load import load

    _, cfg = load([f"run.dir={tmp_path}"])
    write_curves(tmp_path / "not_a_run", cfg)  # no metrics.jsonl: reported, not raised
    assert "curves.png not written" in capsys.readouterr().err


def test_updates_axis_interpolates_the_training_rows(tmp_path):
    from dreamlab.analyze.runs import read_metrics_jsonl

    rows = [{"step": 100, "time": T0, "perf/updates": 10.0}, {"step": 200, "time": T0 + 1, METRIC: 5.0},
            {"step": 300, "time": T0 + 2, "perf/updates": 50.0}, {"step": 300, "time": T0 + 2, METRIC: 7.0}]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    curve = read_metrics_jsonl(path, [METRIC], need_updates=True)[METRIC]
    assert curve.updates.tolist() == [30.0, 50.0]
    assert np.isnan(read_metrics_jsonl(path, [METRIC])[METRIC].updates).all()  # not read unless asked


def test_group_labels_name_what_differs_not_the_run_name(tmp_path):
    from dreamlab.analyze.summarize import group_runs

    make_groups(tmp_path)
    runs = load_runs([str(tmp_path)], [METRIC])
    for i, run in enumerate(runs):
        run.config["run.name"] = f"t{i:03d}"  # as a sweep names its trials
    assert sorted(label for label, _ in group_runs(runs, [])) == ["agent.lr=0.0003", "agent.lr=0.001"]
    assert sorted(label for label, _ in group_runs(runs, ["run.name"]))[:2] == ["run.name=t000", "run.name=t001"]
    summary = summarize(runs[:2] + runs[3:4], Options())  # one run per group: the runs table names the group
    assert "| run / group | group | n |" in render(summary, "markdown")


def test_plot_band_over_seeds_with_different_eval_schedules():
    from dreamlab.analyze.plot import band
    from dreamlab.analyze.runs import Curve

    def curve(steps, values):
        steps = np.asarray(steps, dtype=float)
        return Curve(steps, steps / 10, np.full(len(steps), np.nan), np.asarray(values, dtype=float))

    # seed a: every 100 steps up to 400; seed b: every 200 steps from 200 to 600
    x, mean, low, high = band([curve([100, 200, 300, 400], [0, 10, 20, 30]), curve([200, 400, 600], [0, 40, 80])],
                              "env_steps", points=3)
    assert x.tolist() == [200.0, 300.0, 400.0]  # the range both seeds cover
    assert mean.tolist() == [5.0, 20.0, 35.0] and low.tolist() == [0.0, 20.0, 30.0]
    assert high.tolist() == [10.0, 20.0, 40.0]
    x, mean, low, high = band([curve([100, 200], [1, 2])], "wall")
    assert x.tolist() == [10.0, 20.0] and mean.tolist() == low.tolist() == [1.0, 2.0]


# ---- verdict rule: seeds, p-value --------------------------------------------------------------------


def test_two_seeds_a_group_are_inconclusive_even_when_the_interval_excludes_zero(tmp_path):
    make_groups(tmp_path, delta=200.0, seeds=(0, 1))
    summary = summarize(load_runs([str(tmp_path)], [METRIC]), Options(baseline="agent.lr=0.001"))
    verdict = summary.verdicts[0]
    assert verdict.verdict == "inconclusive: n=2" and verdict.low > 0  # the bootstrap alone said "supported"
    assert verdict.p_value is not None  # still reported
    pair = judge("g", "best up", [10, 12], [0, 9])  # every resampled difference is >= 1, yet Welch's p is 0.38
    assert (pair.low, pair.high) == (1.0, 12.0) and pair.p_value == pytest.approx(0.3771922747, abs=1e-8)
    assert pair.verdict == inconclusive(2) and judge("g", "best up", [10, 11, 12], [0, 9]).verdict == inconclusive(2)


def test_student_t_tail_and_welch_by_hand():
    from dreamlab.analyze.verdict import student_t_two_sided_p, welch_t_test

    for t in (0.0, 0.5, 1.0, 3.0, 40.0):  # closed forms: df=1 is Cauchy, df=2 has 1 - |t| / sqrt(2 + t^2)
        assert student_t_two_sided_p(t, 1.0) == pytest.approx(1 - 2 / np.pi * np.arctan(t), abs=1e-12)
        assert student_t_two_sided_p(t, 2.0) == pytest.approx(1 - t / np.sqrt(2 + t * t), abs=1e-12)
    assert student_t_two_sided_p(1.959963985, 1e7) == pytest.approx(0.05, abs=1e-6)  # the normal limit
    # means 17 and 1; variances of the means 127/3 and 1/3: t = 16 / sqrt(128/3)
    t, df, p = welch_t_test(np.array([10.0, 11.0, 30.0]), np.array([0.0, 1.0, 2.0]))
    assert t == pytest.approx(16 / np.sqrt(128 / 3))
    assert df == pytest.approx((128 / 3) ** 2 / ((127 / 3) ** 2 / 2 + (1 / 3) ** 2 / 2))
    assert welch_t_test(np.array([5.0, 5.0]), np.array([2.0, 2.0]))[2] == 0.0  # apart, no noise
    assert welch_t_test(np.array([2.0, 2.0]), np.array([2.0, 2.0]))[2] == 1.0
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for _ in range(20):
        a, b = rng.normal(size=3), rng.normal(1.0, 3.0, size=5)
        assert welch_t_test(a, b)[2] == pytest.approx(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)


def test_supported_needs_the_interval_and_p_below_alpha():
    # the bootstrap interval [8.7, 28.7] excludes zero, but Welch's p is 0.13: one seed at 30 carries it
    wide = judge("g", "best up", [10, 11, 30], [0, 1, 2])
    assert wide.low > 0 and wide.p_value == pytest.approx(0.132, abs=1e-3) and wide.verdict == CANNOT_TELL
    tight = judge("g", "best up", [10, 11, 12], [0, 1, 2])
    assert tight.p_value < 0.05 and tight.verdict == SUPPORTED
    assert judge("g", "best down", [10, 11, 12], [0, 1, 2]).verdict == CONTRADICTED


def test_p_value_in_every_format(tmp_path):
    make_groups(tmp_path)
    text, summary = compare([str(tmp_path)], Options(baseline="agent.lr=0.001"), {}, "json")
    verdict = json.loads(text)["verdicts"][0]
    assert verdict["test"] == "welch" and 0 <= verdict["p_value"] < 0.05
    rows = list(csv.DictReader(render(summary, "csv").splitlines()))
    treated = next(r for r in rows if r["kind"] == "group" and r["name"] == "agent.lr=0.0003")
    assert float(treated["p_value"]) == pytest.approx(verdict["p_value"]) and treated["verdict"] == SUPPORTED
    assert float(treated["ci_low"]) == pytest.approx(verdict["low"])
    for form in ("markdown", "table"):
        assert "95% CI [" in render(summary, form) and ", Welch p=" in render(summary, form)


# ---- --expect -----------------------------------------------------------------------------------------


def make_unexpecting_groups(path, seeds=(0, 1, 2)):
    """Two groups of seeds, neither with a run.expect; the treatment also logs a falling loss/td."""
    for seed in seeds:
        make_run(path / f"base_s{seed}", shifted(seed), seed=seed, lr=1e-3,
                 train_rows=[(50, T0 + 0.5, 2.0 + seed / 10)])
        make_run(path / f"new_s{seed}", shifted(200 + seed), seed=seed, lr=3e-4,
                 train_rows=[(50, T0 + 0.5, 1.0 + seed / 10)])
    return path


def test_expect_on_the_command_line_judges_runs_without_run_expect(tmp_path, capsys):
    runs = make_unexpecting_groups(tmp_path / "runs")
    base = ["compare", str(runs), "--baseline", "agent.lr=0.001", "--format", "json"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["verdicts"][0]["verdict"].startswith("no expectation")
    assert main([*base, "--expect", "eval/return_mean up"]) == 0
    verdict = json.loads(capsys.readouterr().out)["verdicts"][0]
    assert (verdict["expect"], verdict["verdict"]) == ("eval/return_mean up", SUPPORTED)
    assert main([*base, "--expect", "loss/td down"]) == 0  # a side metric is read for it
    assert json.loads(capsys.readouterr().out)["verdicts"][0]["verdict"] == SUPPORTED
    assert main(["compare", str(runs), "--expect", "eval/return_mean up"]) == 1
    assert "--expect needs --baseline" in capsys.readouterr().err
    assert main([*base, "--expect", "eval/return_mean sideways"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


# ---- group labels ----------------------------------------------------------------------------------------


def test_a_dreamlab_run_beside_a_tensorboard_run_is_labelled_by_name_not_by_its_whole_config(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(tmp_path / "sb3" / "PPO_1"))
    for step, value in [(100, 20.0), (500, 300.0)]:
        writer.add_scalar("rollout/ep_rew_mean", value, global_step=step)
    writer.close()
    for seed in (0, 1):
        make_run(tmp_path / "ours" / f"s{seed}", STEADY, seed=seed)
    _, summary = compare([str(tmp_path / "sb3"), str(tmp_path / "ours")], Options(),
                         {"rollout/ep_rew_mean": METRIC}, "json")
    # nothing tells the dreamlab seeds apart from another dreamlab config: they are named by agent and env
    assert sorted(g["name"] for g in summary.groups) == ["PPO_1", "agent.name=iqn,env.id=CartPole-v1"]


def test_label_keys_missing_on_one_side_count_only_within_one_kind():
    from dreamlab.analyze.runs import Run
    from dreamlab.analyze.summarize import group_runs

    def run(name, config, kind="dreamlab"):
        return Run(name, name, config, {}, {}, kind=kind)

    old = run("old", {"agent.name": "iqn", "agent.lr": 0.001})
    new = run("new", {"agent.name": "iqn", "agent.lr": 0.001, "agent.new_key": 4})
    foreign = run("ppo", {"learning_rate": 0.0003, "n_steps": 2048}, kind="mlflow")
    labels = {members[0].name: label for label, members in group_runs([old, new, foreign], [])}
    assert labels["new"] == "agent.new_key=4" and labels["old"] == "agent.new_key=unset"
    assert labels["ppo"] == "ppo"  # its keys mean nothing beside a dreamlab config; nothing differs in its kind
    other = run("ppo2", {"learning_rate": 0.001, "n_steps": 2048}, kind="mlflow")
    labels = {members[0].name: label for label, members in group_runs([old, foreign, other], [])}
    assert labels == {"old": "old", "ppo": "learning_rate=0.0003", "ppo2": "learning_rate=0.001"}


# ---- plot of short runs, auc ranges, missing metric ----------------------------------------------------


def test_short_curves_are_drawn_with_markers(tmp_path):
    from dreamlab.analyze.plot import MARKERS_UP_TO, band, line_style, plot_groups
    from dreamlab.analyze.runs import Curve, Run

    def one_point_run(name, value):
        step = np.array([100.0])
        return Run(name, name, {}, {}, {METRIC: Curve(step, step / 10, np.full(1, np.nan), np.array([value]))})

    x, mean, low, high = band([r.curves[METRIC] for r in (one_point_run("a", 5.0), one_point_run("b", 7.0))],
                              "env_steps")
    assert (x.tolist(), mean.tolist(), low.tolist(), high.tolist()) == ([100.0], [6.0], [5.0], [7.0])
    assert line_style(1, False)["marker"] == "o" and line_style(MARKERS_UP_TO, True)["marker"] == "o"
    assert "marker" not in line_style(MARKERS_UP_TO + 1, False)
    path = plot_groups({"short": [one_point_run("a", 5.0), one_point_run("b", 7.0)]}, METRIC, tmp_path / "p.png")
    assert png_size(path) == (800, 500)


def test_warning_when_the_areas_cover_different_step_ranges(tmp_path, capsys):
    make_run(tmp_path / "runs" / "short", STEADY[:2], lr=1e-3)  # steps 100-200
    make_run(tmp_path / "runs" / "long", STEADY, lr=3e-4)  # steps 100-500
    assert main(["compare", str(tmp_path / "runs"), "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dreamlab: warning: auc covers different env_steps ranges")
    assert "[100, 200] (short)" in err and "[100, 500] (long)" in err
    make_run(tmp_path / "same" / "a", STEADY, lr=1e-3)
    make_run(tmp_path / "same" / "b", STEADY, lr=3e-4)
    assert main(["compare", str(tmp_path / "same")]) == 0
    assert capsys.readouterr().err == ""


def test_no_run_logged_the_metric_lists_what_was_logged(tmp_path, capsys):
    make_run(tmp_path / "a", STEADY, train_rows=[(50, T0, 0.5)])
    assert main(["compare", str(tmp_path / "a"), "--metric", "eval/nothing"]) == 1
    err = capsys.readouterr().err
    assert err == ("dreamlab: error: no run logged eval/nothing (--metric); "
                   "logged: env/steps, eval/return_mean, loss/td\n")
    rows = [{"step": 10, "time": T0, **{f"m/{i:02d}": 1.0 for i in range(12)}}]
    (tmp_path / "many").mkdir()
    (tmp_path / "many" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["compare", str(tmp_path / "many"), "--metric", "eval/nothing"]) == 1
    err = capsys.readouterr().err
    assert "logged: m/00, m/01, m/02, m/03, m/04, m/05, m/06, m/07 ... (12 names in all)" in err
