"""The collector restart policy alone (collect/restarts.py): deaths and starts in, restarts, incarnation
numbers and the give-up rules out. No process, no actor, no env."""

import pytest

from dreamlab.collect.base import FAILED_STARTS, WorkerStats
from dreamlab.collect.restarts import RestartingCollector, RestartPolicy


def policy(workers=2, max_restarts=100, **kwargs):
    return RestartPolicy(workers, max_restarts, WorkerStats(workers), **kwargs)


def test_each_restart_is_a_new_incarnation_of_that_worker_only(capsys):
    restarts = policy()
    assert restarts.restart(1, started=True, why="exited with code 1") == 1
    assert restarts.restart(1, started=True, why="was silent for 5 s") == 2
    assert restarts.restart(0, started=True, why="exited with code -9") == 1
    assert restarts.incarnations == [1, 2] and restarts.restarts == 3 and restarts.stats.restarts == 3
    assert capsys.readouterr().err.splitlines() == [
        "dreamlab: collector 1 exited with code 1; restarting it (restart 1)",
        "dreamlab: collector 1 was silent for 5 s; restarting it (restart 2)",
        "dreamlab: collector 0 exited with code -9; restarting it (restart 3)",
    ]


def test_max_restarts_counts_over_all_workers():
    restarts = policy(max_restarts=2)
    restarts.restart(0, True, "exited with code 1")
    restarts.restart(1, True, "exited with code 1")
    with pytest.raises(RuntimeError, match=r"^collector 0 exited with code 1; collect.max_restarts=2 restarts "
                                           r"used up$"):
        restarts.restart(0, True, "exited with code 1")
    assert restarts.incarnations == [1, 1] and restarts.restarts == 2  # the refused restart changed nothing


def test_failed_starts_in_a_row_give_up_and_a_started_worker_resets_the_count():
    restarts = policy(hint=" (see its error above)")
    for _ in range(FAILED_STARTS - 1):  # dies before its first chunk, twice
        restarts.restart(0, started=False, why="exited with code 1")
    restarts.restart(0, started=True, why="exited with code 1")  # this incarnation had delivered: count back to 0
    for _ in range(FAILED_STARTS - 1):
        restarts.restart(0, started=False, why="exited with code 1")
    restarts.restart(1, started=False, why="exited with code 1")  # another worker's failures count apart
    assert restarts.failed_starts == [FAILED_STARTS - 1, 1]
    with pytest.raises(RuntimeError, match=rf"^collector 0 exited with code 1 before its first chunk, {FAILED_STARTS} "
                                           r"times in a row \(see its error above\)$"):
        restarts.restart(0, started=False, why="exited with code 1")
    assert restarts.incarnations == [2 * FAILED_STARTS - 1, 1]


def test_label_names_the_worker_kind():
    restarts = policy(label="collector actor", failed_starts=1)
    with pytest.raises(RuntimeError, match=r"^collector actor 1 failed \(RayActorError: x\) before its first "
                                           r"chunk, 1 times in a row$"):
        restarts.restart(1, started=False, why="failed (RayActorError: x)")


def test_checkpoint_state_round_trip_resumes_every_worker_as_a_new_incarnation():
    class Collector(RestartingCollector):
        mode = "process"

        def __init__(self, cfg_workers):
            self.cfg = type("Cfg", (), {"collect": type("Collect", (), {"workers": cfg_workers})()})()
            self.stats = WorkerStats(cfg_workers)
            self.restart_policy = RestartPolicy(cfg_workers, 100, self.stats)
            self.pending_cuts = []

    before = Collector(3)
    before.restart_policy.restart(2, True, "exited with code 1")
    state = before.state_dict()
    assert state == {"exact": False, "mode": "process", "incarnations": [0, 0, 1], "restarts": 1}
    after = Collector(3)
    after.load_state_dict(state)
    assert after.restart_policy.incarnations == [1, 1, 2] and after.restart_policy.restarts == 1
    assert after.restart_policy.restart(0, True, "exited with code 1") == 2  # numbering goes on from there
    assert after.stats.restarts == 2
