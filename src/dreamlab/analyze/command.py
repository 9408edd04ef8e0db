"""`dreamlab compare`: load runs, summarize, render, and optionally plot (nothing is written on bad input)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dreamlab.analyze.runs import MLFLOW_PREFIX, Run, find_runs
from dreamlab.analyze.sources import load_runs
from dreamlab.analyze.summarize import CompareError, Options, Summary, summarize
from dreamlab.analyze.verdict import ExpectError, parse_expect

DEFAULT_METRIC = "eval/return_mean"


def parse_map(pairs: list[str]) -> dict[str, str]:
    """['rollout/ep_rew_mean=eval/return_mean'] -> {their tag: our name}."""
    mapping = {}
    for pair in pairs:
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs or not ours:
            raise CompareError(f"--map {pair}: expected their_tag=our_name")
        mapping[theirs] = ours
    return mapping


def split_list(values: list[str]) -> list[str]:
    """['a,b', 'c'] -> ['a', 'b', 'c'] (options may be repeated or comma separated)."""
    return [v for value in values for v in value.split(",") if v]


def recorded_primary_metric(sources: list[str]) -> str:
    """run.primary_metric of the first dreamlab run among `sources`, else eval/return_mean."""
    for source in sources:
        if source.startswith(MLFLOW_PREFIX) or not Path(source).is_dir():
            continue
        for path in find_runs(Path(source))[:1]:
            try:
                return json.loads((path / "run.json").read_text()).get("primary_metric") or DEFAULT_METRIC
            except (OSError, ValueError):
                continue
    return DEFAULT_METRIC


def recorded_threshold(runs: list[Run]) -> float | None:
    for run in runs:
        value = run.info.get("threshold", run.config.get("run.threshold"))
        if value is not None:
            return float(value)
    return None


def expected_metrics(runs: list[Run], expect: str | None = None) -> list[str]:
    """Metric names that --expect or the runs' expectations refer to (they must be loaded to be judged)."""
    found = []
    for text in [expect] if expect else [run.expect for run in runs]:
        try:
            quantity = parse_expect(text).quantity if text else ""
        except ExpectError:
            continue
        if "/" in quantity:
            found.append(quantity)
    return found


def load_for_compare(sources: list[str], options: Options, mapping: dict[str, str]) -> list[Run]:
    need_updates = options.x == "updates"
    runs = load_runs(sources, [options.metric], mapping, need_updates, options.also)
    if options.baseline and Path(options.baseline).exists():
        known = {str(Path(run.source).resolve()) for run in runs if not run.source.startswith(MLFLOW_PREFIX)}
        if str(Path(options.baseline).resolve()) not in known:
            runs += load_runs([options.baseline], [options.metric], mapping, need_updates, options.also)
    extra = [m for m in expected_metrics(runs, options.expect) if m != options.metric and m not in options.also]
    if extra:  # judge "loss/td down" by its last value: read it too (it shows as a column)
        options.also = [*options.also, *dict.fromkeys(extra)]
        runs = load_for_compare(sources, options, mapping)
    if not runs:
        raise CompareError("no runs found")
    return runs


def compare(sources: list[str], options: Options, mapping: dict[str, str], form: str = "table",
            plot: Path | None = None) -> tuple[str, Summary]:
    """Everything `dreamlab compare` does; returns the rendered text and the summary.

    Warnings (auc over different ranges) go to stderr, one line each, once the input is known good.
    """
    from dreamlab.analyze.report import render

    runs = load_for_compare(sources, options, mapping)
    if options.threshold is None:
        options.threshold = recorded_threshold(runs)
    summary = summarize(runs, options)
    text = render(summary, form)
    if plot is not None:
        from dreamlab.analyze.plot import plot_groups
        from dreamlab.track.run_dir import StorageError

        groups = {label: group.runs for label, group in summary.by_label.items()}
        try:
            plot_groups(groups, options.metric, plot, options.x, options.threshold, summary.baseline)
        except StorageError as exc:
            raise CompareError(f"--plot: {exc}") from None
    for warning in summary.warnings:
        print(f"dreamlab: warning: {warning}", file=sys.stderr)
    return text, summary
