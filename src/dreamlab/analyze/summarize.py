"""Runs -> rows: statistics per run, runs grouped into seeds of one config, baseline ratios, verdicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from dreamlab.analyze import stats
from dreamlab.analyze.runs import Run, empty_curve
from dreamlab.analyze.verdict import ExpectError, Verdict, judge, parse_expect

# Keys that do not change what a run computes: runs differing only here are seeds of one config.
NOT_CONFIG = ("seed", "threads", "run.name", "run.dir", "run.resume", "run.profile", "run.hypothesis", "run.expect")
RATIO_KEYS = ("best", "final", "auc", "threshold_step", "threshold_wall")
# Statistics a group row reports as the mean over its runs.
MEAN_KEYS = ("best", "best_step", "best_wall", "final", "last_step", "auc", "max_drop", "threshold_step",
             "threshold_wall", "share_above", "min_after", "drop_after")
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
    keys = list(keyed)
    if group_by:
        labels = [",".join(f"{k}={v}" for k, v in key) for key in keys]
    else:
        dicts = [dict(key) for key in keys]
        differing = sorted({k for d in dicts for k in d if len({str(e.get(k)) for e in dicts}) > 1})
        labels = []
        for key, members in zip(dicts, keyed.values(), strict=True):
            name = str(members[0].config.get("run.name") or "")
            shown = [f"{k}={key.get(k)}" for k in differing if k != "run"]
            label = ",".join(shown[:3]) + (f",+{len(shown) - 3}" if len(shown) > 3 else "")
            labels.append(key.get("run") or label or name or members[0].name)
    labels = _unique(labels)
    return list(zip(labels, keyed.values(), strict=True))


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
    expect = next((run.expect for run in group.runs if run.expect), "")
    if not expect:
        return Verdict(group.label, "", "no expectation recorded (run.expect)")
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


def summarize(runs: list[Run], options: Options) -> Summary:
    """Rows for every run and group, ratios against the baseline group, and a verdict per other group."""
    if not any(len(run.curves.get(options.metric, empty_curve())) for run in runs):
        raise CompareError(f"no run logged {options.metric} (--metric)")
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
    return Summary(options, [r for g in groups for r in g.rows], group_rows, verdicts,
                   baseline.label if baseline else None, {g.label: g for g in groups})
