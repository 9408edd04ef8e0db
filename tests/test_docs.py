"""The repository stands on its own: no pointer to notes outside it, docs that name real keys and
files, packaging metadata that matches the package, a help text without documents it lacks."""

import dataclasses
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import dreamlab
from dreamlab.config.schema import AGENTS, Config

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ["src", "docs", "benchmarks", "README.md", "Makefile", "pyproject.toml", "CHANGELOG.md",
             "CITATION.cff"]
TEXT = {".py", ".md", ".yaml", ".yml", ".toml", ".cff", ".sh", ".txt", ".cfg", ""}
# notes that live outside the repository: a user of the package never has them
OUTSIDE = re.compile(r"\.\./shared|/work/shared|DREAMERV3\.md|DESIGN\.md|STYLE\.md|/work/\.venv")


def published_files() -> list[Path]:
    files = []
    for name in PUBLISHED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        files += [p for p in candidates if p.suffix in TEXT and "egg-info" not in str(p)
                  and "__pycache__" not in p.parts and "results" not in p.relative_to(ROOT).parts]
    return files


def test_no_file_points_outside_the_repository():
    found = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in published_files()
             for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if OUTSIDE.search(line)]
    assert not found, "\n".join(found)


def test_every_doc_named_in_the_repository_exists():
    named = {m.group(0) for p in published_files() for m in re.finditer(r"docs/[\w-]+\.md", p.read_text())}
    assert "docs/dreamerv3.md" in named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, missing


def config_keys() -> set[str]:
    keys = set()

    def walk(obj, prefix):
        for field in dataclasses.fields(obj):
            value = getattr(obj, field.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{field.name}.")
            else:
                keys.add(f"{prefix}{field.name}")

    for agent in AGENTS.values():
        walk(Config(agent=agent()), "")
    return keys


def test_the_dreamerv3_page_names_only_real_config_keys():
    text = (ROOT / "docs" / "dreamerv3.md").read_text()
    sections = ("agent", "train", "replay", "eval", "env", "track", "run", "collect", "checkpoint")
    named = set(re.findall(rf"`((?:{'|'.join(sections)})\.[a-z0-9_]+)", text))
    assert len(named) > 40
    assert not named - config_keys(), sorted(named - config_keys())
    for size in ("xs", "cpu", "1m", "12m"):  # every size preset is in its table
        assert (ROOT / "src/dreamlab/config/presets/size" / f"{size}.yaml").is_file()
        assert f"| `{size}`" in text


def test_package_metadata_matches_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == dreamlab.__version__
    assert project["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert project["urls"]["Repository"] and (ROOT / "CHANGELOG.md").read_text().count("## [") >= 2
    assert f'version: "{dreamlab.__version__}"' in (ROOT / "CITATION.cff").read_text()
    assert (ROOT / "src/dreamlab/py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dreamlab"]
    assert "py.typed" in data


def dreamlab_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamlab.cli", *args], capture_output=True, text=True,
                          timeout=60)


def test_version():
    result = dreamlab_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"dreamlab {dreamlab.__version__}"


@pytest.mark.parametrize("command", [[], ["eval"], ["compare"], ["sweep"], ["serve-env"], ["config"]])
def test_help_names_no_document_the_package_lacks(command):
    result = dreamlab_cli(*command, "-h")
    assert result.returncode == 0, result.stderr
    assert not re.search(r"\b[\w/.-]+\.md\b", result.stdout), result.stdout
