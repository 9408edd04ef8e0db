"""Pure: `key=a,b,c` overrides -> the cartesian product of trials (commas inside [] {} or quotes do not split)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools


class SweepError(ValueError):
    """A sweep that cannot start: bad grammar, or a sweep directory holding another sweep."""


@dataclasses.dataclass(frozen=True)
class Trial:
    id: str  # t000, t001, ... in product order
    overrides: tuple[str, ...]  # the fixed overrides followed by this trial's choice of each swept key


def split_values(text: str) -> list[str]:
    """'1e-4,3e-4' -> ['1e-4', '3e-4']; '[64,64],[32]' -> ['[64,64]', '[32]']."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse(overrides: list[str]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """Fixed overrides, and (key, values) of every swept key, in the order given."""
    fixed: list[str] = []
    swept: list[tuple[str, list[str]]] = []
    for text in overrides:
        key, sep, value = text.partition("=")
        values = split_values(value) if sep else [value]
        if sep and len(values) > 1:
            if any(v == "" for v in values):
                raise SweepError(f"{text}: an empty value in the list")
            if key in (k for k, _ in swept):
                raise SweepError(f"{key}: swept twice")
            swept.append((key, values))
        else:
            fixed.append(text)
    return fixed, swept


def trials(overrides: list[str]) -> tuple[list[Trial], list[str]]:
    """Every trial of the product, and the swept keys."""
    fixed, swept = parse(overrides)
    keys = [key for key, _ in swept]
    combos = itertools.product(*(values for _, values in swept)) if swept else [()]
    found = [Trial(f"t{i:03d}", (*fixed, *(f"{k}={v}" for k, v in zip(keys, combo, strict=True))))
             for i, combo in enumerate(combos)]
    return found, keys


def default_name(overrides: list[str]) -> str:
    """A sweep directory name that the same command line always gives (re-runs find their trials)."""
    digest = hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:8]
    return f"sweep_{digest}"
