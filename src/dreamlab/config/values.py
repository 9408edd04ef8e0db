"""Config values that mean something to several layers, defined once at the bottom (config) so that
the layers above read them from here: env ids the config itself treats specially, and byte sizes.

No imports beyond the standard library: envs, replay and collector processes import this cheaply.
"""

from __future__ import annotations

import math

REMOTE = "remote"  # env.id of an env served by `dreamlab serve-env` (envs/remote/)
ATARI_PREFIX = "ALE/"  # env.id prefix of the Atari 2600 games through ale-py (envs/atari.py)
UNITS = {"": 1, "B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_bytes(text: str) -> int | None:
    """'8GB' -> 8 * 2**30 (binary units; KB, MB, GB, TB or a plain number); '' -> None."""
    text = str(text).strip().upper().replace("IB", "B")
    if not text:
        return None
    number = text.rstrip("KMGTB")
    unit = text[len(number):]
    try:
        value = float(number) * UNITS[unit]
    except (KeyError, ValueError):
        raise ValueError(f"replay.max_bytes={text!r}: expected a size like 8GB, 512MB or 1000000") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"replay.max_bytes={text!r}: expected a positive, finite size")
    return int(value)
