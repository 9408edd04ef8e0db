from dreamlab.track import names
from dreamlab.track.monitors import CollapseAlarm


def test_collapse_alarm_fires_when_eval_falls_while_value_rises():
    alarm = CollapseAlarm(drop=0.3)
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 10.0})
    assert alarm.on_eval(500.0) == 0.0
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 8.0})
    assert alarm.on_eval(150.0) == 0.0  # fell, but the value fell too: an honest critic
    alarm.observe_training({names.CRITIC_VALUE_MEAN: 14.0})
    assert alarm.on_eval(150.0) == 1.0  # fell while the value rose: the exploitation signature
    assert alarm.on_eval(480.0) == 0.0  # within 30% of the best
