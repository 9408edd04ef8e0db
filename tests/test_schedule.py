import pytest

from dreamlab.train.schedule import Every, UpdateSchedule


@pytest.mark.parametrize("train_ratio, per_update, expected", [
    (32, 64, 500),  # IQN: batch 64 -> one update per 2 env steps
    (64, 64, 1000),
    (512, 1024, 500),  # DreamerV3: 16 x 64 replayed steps per update
    (1024, 1024, 1000),
    (10, 64, 156),  # fractions carry over: floor(1000 * 10 / 64)
])
def test_update_counts_follow_train_ratio(train_ratio, per_update, expected):
    schedule = UpdateSchedule(train_ratio, per_update, learning_starts=0)
    total = sum(schedule.due(step + 1, 1) for step in range(1000))
    assert total == expected


def test_no_updates_before_learning_starts_and_steps_in_chunks():
    schedule = UpdateSchedule(64, 64, learning_starts=100)
    assert schedule.due(96, 4) == 0
    total, steps = 0, 96
    while steps < 1096:
        steps += 4
        total += schedule.due(steps, 4)
    assert total == 997  # env steps 100..1096 earn one update each


def test_schedule_state_roundtrip():
    a = UpdateSchedule(10, 64)
    a.due(7, 7)
    b = UpdateSchedule(10, 64)
    b.load_state_dict(a.state_dict())
    assert [a.due(7 + i, 1) for i in range(1, 100)] == [b.due(7 + i, 1) for i in range(1, 100)]


def test_every_fires_once_per_period_even_with_jumps():
    clock = Every(100)
    fired = [step for step in range(0, 1000, 7) if clock(step)]
    assert len(fired) == 9 and fired[0] == 105


@pytest.mark.parametrize("learning_starts", [200, 199])
def test_action_repeat_earns_updates_per_agent_step(learning_starts):
    plain = UpdateSchedule(10, 64, learning_starts=100)
    repeated = UpdateSchedule(10, 64, learning_starts=learning_starts, action_repeat=2)
    per_agent_step = [plain.due(step, 1) for step in range(1, 1001)]
    # env steps = agent steps x 2; learning starts at the agent step that reaches 200 (or 199) env steps
    assert [repeated.due(2 * step, 2) for step in range(1, 1001)] == per_agent_step
    assert sum(per_agent_step) == 901 * 10 // 64
    chunked = UpdateSchedule(10, 64, learning_starts=learning_starts, action_repeat=2)
    assert sum(chunked.due(8 * step, 8) for step in range(1, 251)) == 901 * 10 // 64  # 4 agent steps a chunk
