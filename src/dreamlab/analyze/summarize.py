"""Runs -> rows: statistics per run, runs grouped into seeds of one config, baseline ratios, verdicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dreamlab.analyze import stats
from dreamlab.analyze.runs import Run, empty_curve, logged_names
from dreamlab.analyze.verdict import ExpectError, Verdict, judge, parse_expect

# Keys that do not change what a run computes: runs differing only here are seeds of one config.
NOT_CONFIG = ("seed", "threads", "run.name", "run.dir", "run.resume", "run.profile", "run.hypothesis", "run.expect")
RATIO_KEYS = ("best", "final", "auc", "threshold_step", "threshold_wall")
# Statistics a group row reports as the mean over its runs.
MEAN_KEYS = ("best", "best_step", "best_wall", "final", "last_step", "auc", "max_drop", "threshold_step",
             "threshold_wall", "share_above", "min_after", "drop_after")
NAMES_LISTED = 8  # "no run logged X" lists this many of the names found
RANGE_TOLERANCE = 0.1  # auc ranges whose ends differ by more than this share of the widest span are warned of
UNSET = "unset"  # a group label's value of a key the group's config does not have
QUANTITIES = {"steps_to_threshold": "threshold_step", "wall_to_threshold": "threshold_wall", "best": "best",
              "final": "final", "auc": "auc", "max_drop": "max_drop", "best_step": "best_step"}


class CompareError(ValueError):
    """Options that do not fit the runs (an unknown baseline, a metric no run logged)."""


@dataclasses.dataclass
class Options:
    metric: str = "eval/return_mean"
    threshold: float | None = None
    x: str = "env_steps"  # env_steps | wall | updates
    also: list[str] = dataclasses.field(default_factory=list)
    group_by: list[str] = dataclasses.field(default_factory=list)  # empty: config minus seed
    baseline: str | None = None
    expect: str | None = None  # judged for every group, instead of the runs' run.expect


@dataclasses.dataclass
class Group:
    label: str
    runs: list[Run]
    rows: list[dict[str, Any]]


@dataclasses.dataclass
class Summary:
    options: Options
    runs: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    verdicts: list[Verdict]
    baseline: str | None
    by_label: dict[str, Group]
    warnings: list[str] = dataclasses.field(default_factory=list)  # one line each, for stderr


def run_row(run: Run, options: Options) -> dict[str, Any]:
    """Every statistic of one run's curve of `options.metric` against `options.x`."""
    curve = run.curves.get(options.metric, empty_curve())
    values, x = curve.values, curve.x(options.x)
    best = stats.best_index(values)
    row: dict[str, Any] = {
        "name": run.name, "n": 1, "evals": len(values),
        "best": None if best is None else float(values[best]),
        "best_step": None if best is None else float(curve.steps[best]),
        "best_wall": None if best is None else float(curve.wall[best]),
        "final": stats.final_value(values),
        "last_step": float(curve.steps[-1]) if len(curve) else None,
        "last_wall": float(curve.wall[-1]) if len(curve) else None,
        "auc": stats.area_under_curve(x, values),
        **dict(zip(("auc_from", "auc_to"), stats.covered_range(x, values), strict=True)),
        "max_drop": stats.max_drop(values),
    }
    if options.threshold is not None:
        crossing = stats.first_crossing(values, options.threshold)
        row["crossed"] = crossing is not None
        row["threshold_step"] = None if crossing is None else float(curve.steps[crossing])
        row["threshold_wall"] = None if crossing is None else float(curve.wall[crossing])
        after = stats.stability_after(values, options.threshold, crossing) if crossing is not None else {}
        for key in ("share_above", "min_after", "drop_after"):
            row[key] = after.get(key)
    for metric in options.also:
        row[metric] = stats.final_value(run.curves.get(metric, empty_curve()).values)
    row["end_state"] = run.end_state
    return {k: _clean(v) for k, v in row.items()}


def _clean(value: Any) -> Any:
    """NaN -> None so every output format shows a missing value the same way."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def group_key(run: Run, group_by: list[str]) -> tuple:
    if group_by:
        return tuple((key, str(run.config.get(key, run.info.get(key.removeprefix("run."))))) for key in group_by)
    if not run.config:  # another framework's run: nothing says which runs are seeds of one config
        return (("run", run.name),)
    return tuple(sorted((k, str(v)) for k, v in run.config.items() if k not in NOT_CONFIG))


def group_runs(runs: list[Run], group_by: list[str]) -> list[tuple[str, list[Run]]]:
    """Runs grouped by `group_by` keys, or by config minus seed; labels name what differs between groups."""
    keyed: dict[tuple, list[Run]] = {}
    for run in runs:
        keyed.setdefault(group_key(run, group_by), []).append(run)
    if group_by:
        labels = [",".join(f"{k}={v}" for k, v in key) for key in keyed]
    else:
        labels = config_labels([dict(key) for key in keyed], list(keyed.values()))
    return list(zip(_unique(labels), keyed.values(), strict=True))


def differing_keys(configs: list[dict[str, str]], kinds: list[str]) -> list[str]:
    """Config keys that tell groups apart, sorted.

    A key differs when two groups holding it give it different values, or when a group lacks it
    that another group of the same kind (dreamlab, or another framework's MLflow params) has: a
    key a dreamlab config has and a foreign config lacks says nothing about the runs.
    """
    differing = []
    for key in sorted({k for config in configs for k in config}):
        if len({config[key] for config in configs if key in config}) > 1:
            differing.append(key)
            continue
        for kind in set(kinds):
            holds = [key in config for config, k in zip(configs, kinds, strict=True) if k == kind]
            if any(holds) and not all(holds):
                differing.append(key)
                break
    return differing


def config_labels(configs: list[dict[str, str]], members: list[list[Run]], shown_keys: int = 3) -> list[str]:
    """One label per group: its values of the differing keys, else a name.

    A group without a config (a TensorBoard folder) is its folder's name; a config group that
    differs in nothing is its run.name, its one run's name, or its agent and env.
    """
    has_config = [bool(runs[0].config) for runs in members]
    with_config = [i for i, has in enumerate(has_config) if has]
    kinds = {i: members[i][0].kind for i in with_config}
    differing = differing_keys([configs[i] for i in with_config], [kinds[i] for i in with_config])
    labels = []
    for i, (config, runs) in enumerate(zip(configs, members, strict=True)):
        if not has_config[i]:
            labels.append(config.get("run") or runs[0].name)
            continue
        same_kind = [configs[j] for j in with_config if kinds[j] == kinds[i]]
        shown = [f"{k}={config.get(k, UNSET)}" for k in differing if any(k in c for c in same_kind)]
        label = ",".join(shown[:shown_keys]) + (f",+{len(shown) - shown_keys}" if len(shown) > shown_keys else "")
        labels.append(label or _plain_name(runs))
    return labels


def _plain_name(runs: list[Run]) -> str:
    """A config group's name when no key tells it apart: run.name, its one run, or agent and env."""
    config = runs[0].config
    if config.get("run.name"):
        return str(config["run.name"])
    if len(runs) == 1 or not {"agent.name", "env.id"} <= set(config):
        return runs[0].name
    return f"agent.name={config['agent.name']},env.id={config['env.id']}"


def _unique(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


def group_row(label: str, rows: list[dict[str, Any]], options: Options) -> dict[str, Any]:
    """Means over a group's runs (of the runs where a statistic exists), and how many crossed."""
    row: dict[str, Any] = {"name": label, "n": len(rows)}
    for key in (*MEAN_KEYS, *options.also):
        if any(key in r for r in rows):
            row[key] = stats.mean_or_none([r.get(key) for r in rows])
    if options.threshold is not None:
        row["crossed"] = f"{sum(bool(r.get('crossed')) for r in rows)}/{len(rows)}"
    return row


def find_baseline(spec: str, groups: list[Group]) -> Group:
    """The group named `spec`, or the group holding the run whose name or path is `spec`."""
    from pathlib import Path

    for group in groups:
        if group.label == spec:
            return group
    wanted = Path(spec).resolve() if Path(spec).exists() else None
    for group in groups:
        for run in group.runs:
            if spec in (run.name, run.source) or (wanted is not None and Path(run.source).resolve() == wanted):
                return group
    raise CompareError(f"--baseline {spec}: no group or run of that name "
                       f"(groups: {', '.join(g.label for g in groups)})")


def quantity_values(rows: list[dict[str, Any]], quantity: str, options: Options) -> tuple[list[float], str]:
    """Per-run values of an expectation's quantity, and a note (a run that never crossed counts as its budget)."""
    note = ""
    if quantity == options.metric:
        key = "auc"
    elif quantity in options.also:
        key = quantity
    elif quantity in QUANTITIES:
        key = QUANTITIES[quantity]
    else:
        raise ExpectError(f"'{quantity}' is neither a statistic ({', '.join(QUANTITIES)}) nor a compared metric")
    values = []
    for row in rows:
        value = row.get(key)
        if value is None and key in ("threshold_step", "threshold_wall"):
            value = row.get("last_step" if key == "threshold_step" else "last_wall")
            note = "runs that never crossed count as their last step (a lower bound)"
        if value is not None:
            values.append(float(value))
    return values, note


def verdict_for(group: Group, baseline: Group, options: Options) -> Verdict:
    """The verdict on --expect, else on the group's recorded run.expect, against the baseline group."""
    expect = options.expect or next((run.expect for run in group.runs if run.expect), "")
    if not expect:
        return Verdict(group.label, "", "no expectation recorded (run.expect; or give --expect)")
    try:
        quantity = parse_expect(expect).quantity
        if quantity in ("steps_to_threshold", "wall_to_threshold") and options.threshold is None:
            return Verdict(group.label, expect, "cannot tell", note="no threshold (--threshold or run.threshold)")
        treatment, note = quantity_values(group.rows, quantity, options)
        control, note_b = quantity_values(baseline.rows, quantity, options)
    except ExpectError as exc:
        return Verdict(group.label, expect, "cannot tell", note=str(exc))
    verdict = judge(group.label, expect, treatment, control)
    verdict.note = note or note_b
    return verdict


def missing_metric_message(metric: str, runs: list[Run], listed: int = NAMES_LISTED) -> str:
    """'no run logged X': with the names the runs did log (the first few, sorted, and how many in all)."""
    found = sorted({name for run in runs for name in logged_names(run)})
    if not found:
        return f"no run logged {metric} (--metric); the runs logged no metric at all"
    more = f" ... ({len(found)} names in all)" if len(found) > listed else ""
    return f"no run logged {metric} (--metric); logged: {', '.join(found[:listed])}{more}"


def range_warning(rows: list[dict[str, Any]], axis: str, tolerance: float = RANGE_TOLERANCE) -> str | None:
    """A warning when the runs' areas under the curve cover different ranges of `axis`, else None.

    The auc is each curve's mean height over its own range: over different ranges (a run stopped
    early, another framework's schedule) the heights average different stages of learning.
    """
    covered = [r for r in rows if r.get("auc_from") is not None and r.get("auc_to") is not None]
    if len(covered) < 2:
        return None
    starts, ends = [r["auc_from"] for r in covered], [r["auc_to"] for r in covered]
    span = max(ends) - min(starts)
    if span <= 0 or max(max(starts) - min(starts), max(ends) - min(ends)) <= tolerance * span:
        return None
    narrow = min(covered, key=lambda r: r["auc_to"] - r["auc_from"])
    wide = max(covered, key=lambda r: r["auc_to"] - r["auc_from"])
    return (f"auc covers different {axis} ranges: [{narrow['auc_from']:g}, {narrow['auc_to']:g}] ({narrow['name']}) "
            f"to [{wide['auc_from']:g}, {wide['auc_to']:g}] ({wide['name']}); compare runs of one budget")


def summarize(runs: list[Run], options: Options) -> Summary:
    """Rows for every run and group, ratios against the baseline group, and a verdict per other group."""
    if not any(len(run.curves.get(options.metric, empty_curve())) for run in runs):
        raise CompareError(missing_metric_message(options.metric, runs))
    if options.expect:
        try:
            parse_expect(options.expect)
        except ExpectError as exc:
            raise CompareError(str(exc).replace("run.expect=", "--expect ", 1)) from None
        if not options.baseline:
            raise CompareError("--expect needs --baseline (the group it is judged against)")
    groups = []
    for label, members in group_runs(runs, options.group_by):
        rows = [run_row(run, options) for run in members]
        for row in rows:
            row["group"] = label
        groups.append(Group(label, members, rows))
    group_rows = [group_row(g.label, g.rows, options) for g in groups]
    verdicts: list[Verdict] = []
    baseline = find_baseline(options.baseline, groups) if options.baseline else None
    if baseline is not None:
        base = group_rows[groups.index(baseline)]
        ratio_keys = [*RATIO_KEYS, *options.also]
        for group, row in zip(groups, group_rows, strict=True):
            for target in (row, *group.rows):
                target["ratios"] = {k: stats.ratio(target.get(k), base.get(k)) for k in ratio_keys}
            if group is not baseline:
                verdicts.append(verdict_for(group, baseline, options))
    run_rows = [r for g in groups for r in g.rows]
    warnings = [w for w in [range_warning(run_rows, options.x)] if w]
    return Summary(options, run_rows, group_rows, verdicts, baseline.label if baseline else None,
                   {g.label: g for g in groups}, warnings)
