"""Render a `Summary`: a rich table in the terminal, or markdown, json or csv for reports."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import sys
from typing import Any

from dreamlab.analyze.summarize import Summary
from dreamlab.analyze.verdict import Verdict

FORMATS = ("table", "markdown", "json", "csv")


def columns(summary: Summary, runs: bool = False) -> list[tuple[str, str]]:
    """(row key, header) of the columns shown, in order; the runs section names each run's group."""
    options = summary.options
    wall = "wall s"
    named = runs and len(summary.groups) > 1 and any(r["group"] != r["name"] for r in summary.runs)
    cols = [("name", "run / group"), *([("group", "group")] if named else []), ("n", "n"), ("best", "best"),
            ("best_step", "best @step"),
            ("best_wall", f"best @{wall}"), ("final", "final"), ("auc", f"auc ({options.x})"),
            ("max_drop", "max drop")]
    if options.threshold is not None:
        cols += [("crossed", f">= {options.threshold:g}"), ("threshold_step", "thr @step"),
                 ("threshold_wall", f"thr @{wall}"), ("share_above", "share >= after"),
                 ("min_after", "min after"), ("drop_after", "drop after")]
    cols += [(metric, f"last {metric}") for metric in options.also]
    if summary.baseline is not None:
        shown = {"best": "best", "auc": "auc", "threshold_step": "thr step", "threshold_wall": "thr wall"}
        keys = ["best", "auc", *(["threshold_step", "threshold_wall"] if options.threshold is not None else [])]
        cols += [(f"ratios.{k}", f"{shown[k]} x base") for k in keys]
    return cols


def cell(row: dict[str, Any], key: str) -> Any:
    if key.startswith("ratios."):
        return (row.get("ratios") or {}).get(key.split(".", 1)[1])
    value = row.get(key)
    if key == "crossed" and isinstance(value, bool):
        return "yes" if value else "no"
    return value


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if float(value).is_integer() and abs(value) < 1e9:
            return f"{value:.0f}"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    return str(value)


def format_p(p_value: float) -> str:
    """A p-value with two significant digits; below 0.001 as '<0.001'."""
    return "<0.001" if p_value < 0.001 else f"{p_value:.2g}"


def _show_groups(summary: Summary) -> bool:
    return any(g["n"] > 1 for g in summary.groups)


def verdict_lines(summary: Summary) -> list[str]:
    lines = []
    for group in summary.by_label.values():
        hypothesis = next((r.hypothesis for r in group.runs if r.hypothesis), "")
        if hypothesis:
            lines.append(f"hypothesis [{group.label}]: {hypothesis}")
    for v in summary.verdicts:
        interval = "" if v.low is None else f", 95% CI [{fmt(v.low)}, {fmt(v.high)}]"
        p_value = "" if v.p_value is None else f", Welch p={format_p(v.p_value)}"
        difference = "" if v.difference is None else f": difference {fmt(v.difference)}{interval}{p_value}"
        seeds = f" ({v.n_treatment} vs {v.n_baseline} seeds)" if v.n_treatment or v.n_baseline else ""
        note = f"; {v.note}" if v.note else ""
        expect = f" expect '{v.expect}'" if v.expect else ""
        lines.append(f"verdict [{v.group} vs {summary.baseline}]{expect}: {v.verdict}{difference}{seeds}{note}")
    return lines


def render_table(summary: Summary) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    # in a terminal the table fits its width; into a pipe or file it keeps its natural width
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 1000
    console = Console(file=buffer, width=max(100, width), force_terminal=False)
    title = f"{summary.options.metric} against {summary.options.x}"
    sections = [("runs", summary.runs)] + ([("groups (mean over runs)", summary.groups)] if _show_groups(summary)
                                           else [])
    for name, rows in sections:
        cols = columns(summary, runs=rows is summary.runs)
        table = Table(title=f"{title}: {name}", title_justify="left")
        for key, header in cols:
            table.add_column(header, justify="left" if key == "name" else "right", overflow="fold")
        for row in rows:
            base = summary.baseline is not None and row.get("name", "") == summary.baseline
            table.add_row(*(fmt(cell(row, k)) for k, _ in cols), style="bold" if base else None)
        console.print(table)
    for line in verdict_lines(summary):
        console.print(line, highlight=False, markup=False)
    return buffer.getvalue()


def render_markdown(summary: Summary) -> str:
    out = []
    sections = [("Runs", summary.runs)] + ([("Groups (mean over runs)", summary.groups)] if _show_groups(summary)
                                           else [])
    for name, rows in sections:
        cols = columns(summary, runs=rows is summary.runs)
        out.append(f"**{name}**: {summary.options.metric} against {summary.options.x}\n")
        out.append("| " + " | ".join(h for _, h in cols) + " |")
        out.append("|" + "|".join("---" if k == "name" else "---:" for k, _ in cols) + "|")
        out += ["| " + " | ".join(fmt(cell(r, k)) for k, _ in cols) + " |" for r in rows]
        out.append("")
    out += [f"- {line}" for line in verdict_lines(summary)]
    return "\n".join(out).rstrip() + "\n"


def to_dict(summary: Summary) -> dict[str, Any]:
    return {
        "options": dataclasses.asdict(summary.options),
        "baseline": summary.baseline,
        "runs": summary.runs,
        "groups": summary.groups,
        "verdicts": [dataclasses.asdict(v) for v in summary.verdicts],
        "warnings": summary.warnings,
    }


def render_json(summary: Summary) -> str:
    return json.dumps(to_dict(summary), indent=1) + "\n"


def verdict_columns(verdict: Verdict) -> dict[str, Any]:
    """A verdict as csv columns of its group's line."""
    return {"expect": verdict.expect, "verdict": verdict.verdict, "difference": verdict.difference,
            "ci_low": verdict.low, "ci_high": verdict.high, "p_value": verdict.p_value, "test": verdict.test,
            "n_treatment": verdict.n_treatment, "n_baseline": verdict.n_baseline, "verdict_note": verdict.note}


def render_csv(summary: Summary) -> str:
    """One line per run and per group (`kind` says which), every statistic a column; a group's line
    also holds its verdict against the baseline (interval, Welch p-value)."""
    keys: list[str] = []
    verdicts = {v.group: verdict_columns(v) for v in summary.verdicts}
    lines = [{"kind": "run", **r} for r in summary.runs]
    lines += [{"kind": "group", **g, **verdicts.get(g["name"], {})} for g in summary.groups]
    flat = []
    for line in lines:
        ratios = line.pop("ratios", None) or {}
        line.update({f"{k}_ratio": v for k, v in ratios.items()})
        flat.append(line)
        keys += [k for k in line if k not in keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def render(summary: Summary, form: str) -> str:
    return {"table": render_table, "markdown": render_markdown, "json": render_json, "csv": render_csv}[form](summary)
