import math

import pytest

from dreamlab.track import names
from dreamlab.track.monitors import CollapseAlarm, Surprise


def test_surprise_is_log_ratio_against_the_components_own_ema():
    surprise = Surprise(decay=0.5)
    assert surprise({names.WM_LOSS_STATE: 2.0, names.WM_KL_RAW: 1.0}) == {}  # the first value seeds the EMA
    out = surprise({names.WM_LOSS_STATE: 4.0, names.WM_KL_RAW: 1.0})
    assert out[names.surprise("state")] == pytest.approx(math.log(4.0 / 2.0), rel=1e-5)
    assert out[names.surprise("kl")] == pytest.approx(0.0, abs=1e-6)
    assert out[names.WM_SURPRISE_TOTAL] == pytest.approx(math.log(2.0) / 2, rel=1e-5)
    assert all(names.is_registered(k) for k in out)
    assert surprise({names.LOSS_TD: 1.0}) == {}  # agents without a world model log no surprise


def test_collapse_alarm_fires_when_eval_falls_while_value_rises():
    alarm = CollapseAlarm(drop=0.3)
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 10.0})
    assert alarm.on_eval(500.0) == 0.0
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 8.0})
    assert alarm.on_eval(150.0) == 0.0  # fell, but the value fell too: an honest critic
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 14.0})
    assert alarm.on_eval(150.0) == 1.0  # fell while the value rose: the exploitation signature
    assert alarm.on_eval(480.0) == 0.0  # within 30% of the best


def test_surprise_gate_opens_above_its_threshold_only():
    from dreamlab.track.monitors import SurpriseGate

    off = SurpriseGate(None)
    assert off.observe({"wm/surprise/total_log_ratio": 10.0}) == 0.0 and off.extra_updates() == 0
    pause = SurpriseGate(0.5, "pause_ac")
    assert pause.observe({"wm/surprise/total_log_ratio": 0.7}) == 1.0 and pause.pauses_actor_critic()
    assert pause.extra_updates() == 0
    assert pause.observe({"wm/surprise/total_log_ratio": 0.3}) == 0.0 and not pause.pauses_actor_critic()
    assert pause.observe({}) == 0.0  # no world-model losses yet: closed
    extra = SurpriseGate(0.5, "extra_wm", extra=3)
    extra.observe({"wm/surprise/total_log_ratio": 0.9})
    assert extra.extra_updates() == 3 and not extra.pauses_actor_critic()
