"""`dreamlab sweep`: the product grammar, a local sweep with a failing trial, re-runs, and the Ray backend."""

import json

import pytest

from dreamlab.cli import main
from dreamlab.sweep.command import plan
from dreamlab.sweep.grid import SweepError, default_name, parse, split_values, trials


def test_split_values_respects_brackets_and_quotes():
    assert split_values("1e-4,3e-4") == ["1e-4", "3e-4"]
    assert split_values("[64,64],[32]") == ["[64,64]", "[32]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("{a: 1, b: 2}") == ["{a: 1, b: 2}"]


def test_product_in_order():
    found, keys = trials(["env=cartpole", "agent.lr=1,2,3", "seed=0,1", "agent.hidden=[8,8]"])
    assert keys == ["agent.lr", "seed"]
    assert len(found) == 6 and [t.id for t in found][:2] == ["t000", "t001"]
    assert found[0].overrides == ("env=cartpole", "agent.hidden=[8,8]", "agent.lr=1", "seed=0")
    assert found[5].overrides[-2:] == ("agent.lr=3", "seed=1")
    assert default_name(["a=1,2"]) == default_name(["a=1,2"]) != default_name(["a=1,3"])


def test_bad_sweeps_are_refused():
    with pytest.raises(SweepError, match="empty value"):
        parse(["agent.lr=1,,2"])
    with pytest.raises(SweepError, match="swept twice"):
        parse(["seed=0,1", "seed=2,3"])
    with pytest.raises(SweepError, match="cannot be swept"):
        plan(["run.dir=a,b"], None, 1)


def sweep_json(tmp_path):
    (path,) = (tmp_path / "runs").glob("sweep_*/sweep.json")
    return json.loads(path.read_text())


def test_local_sweep_with_a_failing_trial_and_a_rerun(tiny, tmp_path, capsys):
    # agent.eps_end=2 is out of range: that trial fails validation, the other three train
    args = ["sweep", *tiny, "agent.eps_end=0.01,0.02,0.05,2", "--parallel", "2"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "failed trial t003" in out and "agent.eps_end: expected a value <= 1" in out
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    assert len(table_rows) == 3 and any("agent.eps_end=0.05" in row for row in table_rows)  # grouped by the swept key
    data = sweep_json(tmp_path)
    statuses = {t["id"]: t["status"] for t in data["trials"]}
    assert statuses == {"t000": "completed", "t001": "completed", "t002": "completed", "t003": "failed"}
    assert all((tmp_path / "runs" / t["run_dir"]).joinpath("summary.json").exists()
               for t in data["trials"] if t["status"] == "completed")
    run_dirs = {p for p in (tmp_path / "runs").glob("sweep_*/*_t0*")}
    assert len(run_dirs) == 3 and all("threads=1" in t["overrides"] for t in data["trials"])

    assert main(args) == 1  # the re-run trains only the trial that did not finish
    out = capsys.readouterr().out
    assert "4 trials, 3 already finished, 1 to run" in out
    assert {p for p in (tmp_path / "runs").glob("sweep_*/*_t0*")} == run_dirs


def test_ray_backend_on_a_local_instance(tiny, tmp_path, capsys):
    pytest.importorskip("ray")
    assert main(["sweep", *tiny, "agent.eps_end=0.01,2", "--backend", "ray", "--parallel", "2"]) == 1
    out = capsys.readouterr().out
    assert "failed trial t001" in out
    statuses = {t["id"]: t["status"] for t in sweep_json(tmp_path)["trials"]}
    assert statuses == {"t000": "completed", "t001": "failed"}
