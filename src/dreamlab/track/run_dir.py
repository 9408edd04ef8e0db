"""Run directory layout: creation, config.yaml, run.json, summary.json.

runs/<YYYY-MM-DD_HHMMSS>_<agent>_<env>[_<name>]/ holds config.yaml (the resolved config), run.json
(hypothesis, expectation, seed, git state, versions, host, resumes), metrics.jsonl, TensorBoard
events, media/, videos/, checkpoints/ and, at the end, summary.json.

Files are replaced whole (`atomic_file`: a temp file, then a rename): a write the disk refuses
(full, read-only, no permission) raises StorageError naming the file and leaves the old one as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from omegaconf import DictConfig, OmegaConf

PACKAGES = ("dreamlab", "torch", "numpy", "gymnasium", "omegaconf", "hydra-core", "tensorboard")


class StorageError(RuntimeError):
    """The file system refused a write (disk full, read-only, no permission); the message names the path."""


def os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write: `exc` itself, or the one torch.save reports as a RuntimeError."""
    for candidate in (exc, exc.__context__):
        if isinstance(candidate, OSError):
            return candidate
    return None


def storage_error(path: Path, exc: OSError, doing: str = "write") -> StorageError:
    return StorageError(f"cannot {doing} {path}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A binary file whose content replaces `path` once fully written (a temp file, then a rename).

    A write that fails (disk full, read-only, no permission) removes the temp file, leaves `path` as
    it was and raises StorageError naming `path`; any other exception removes the temp file too.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as file:
            yield file
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        error = os_error(exc)
        if error is None:
            raise
        raise storage_error(path, error) from None


def env_name(env_id: str) -> str:
    """The env part of a run directory name: 'ALE/Pong-v5' -> 'pong', 'my_pkg:Tiny-v0' -> 'tiny' (the
    module of a `module:EnvId` id is left out; characters other than a-z, 0-9, '_', '.', '-' become '-')."""
    short = env_id.rpartition(":")[2].split("/")[-1].split("-v")[0].lower()
    return re.sub(r"[^a-z0-9_.-]+", "-", short).strip("-.") or "env"


def new_run_dir(parent: str, agent: str, env_id: str, name: str = "") -> Path:
    """Create runs/<YYYY-MM-DD_HHMMSS>_<agent>_<env>[_<name>]/ (a suffix keeps names unique)."""
    stamp = time.strftime("%Y-%m-%d_%H%M%S")
    env_short = env_name(env_id)
    base = "_".join(p for p in (stamp, agent, env_short, name) if p)
    path = Path(parent)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for attempt in range(1000):
            path = Path(parent) / (base if attempt == 0 else f"{base}-{attempt}")
            try:
                path.mkdir()
                return path
            except FileExistsError:
                continue
    except OSError as exc:
        raise storage_error(path, exc, "create the run directory") from None
    raise StorageError(f"cannot create a unique run directory under {parent}")


def git_state(path: Path) -> dict[str, Any]:
    """Commit, dirty flag, branch and top folder of the repository holding `path` (None outside one;
    branch None on a detached HEAD)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    try:
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain")),
                "branch": None if branch == "HEAD" else branch, "root": git("rev-parse", "--show-toplevel")}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "branch": None, "root": None}


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys: {"agent": {"lr": 1}} -> {"agent.lr": 1}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_file(path) as file:
        file.write(text.encode())


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=1, default=str))


def write_config(run_dir: Path, cfg: DictConfig) -> None:
    write_text_atomic(run_dir / "config.yaml", OmegaConf.to_yaml(cfg))


def write_run_files(run_dir: Path, cfg: DictConfig, seed: int, run_cfg: Any) -> None:
    """config.yaml and run.json of a new run (StorageError where they cannot be written)."""
    write_config(run_dir, cfg)
    source = Path(__file__).resolve().parents[3]
    info = {
        "hypothesis": run_cfg.hypothesis,
        "expect": run_cfg.expect,
        "primary_metric": run_cfg.primary_metric,
        "threshold": run_cfg.threshold,
        "seed": seed,
        "git": git_state(source if (source / ".git").exists() else Path.cwd()),
        "versions": versions(),
        "host": socket.gethostname(),
        "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumes": [],
    }
    write_json_atomic(run_dir / "run.json", info)


def record_resume(run_dir: Path, overrides: list[str], cfg: DictConfig) -> None:
    """On resume: note the overrides applied (never silently dropped) and save the new config
    (StorageError where the run directory cannot be written)."""
    info = json.loads((run_dir / "run.json").read_text())
    info.setdefault("resumes", []).append(
        {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "overrides": overrides})
    write_json_atomic(run_dir / "run.json", info)  # first: config.yaml never changes unrecorded
    write_config(run_dir, cfg)
