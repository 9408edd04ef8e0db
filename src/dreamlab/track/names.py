"""The metric-name registry: every logged key is a constant here, named `<family>/<quantity>`.

`check(name)` is called by every sink write, so logging a name missing from this module fails.
Families with a variable last part (`grad/norm_before_clip_max/<module>`,
`wm/surprise/<component>_log_ratio`, `wm/loss_<observation key>`, `crafter/achievement/<name>`) are
registered as prefixes.
"""

from __future__ import annotations

ENV_STEPS = "env/steps"
ENV_EPISODE_RETURN = "env/episode_return"
ENV_EPISODE_LENGTH = "env/episode_length"
ENV_STEPS_PER_S = "env/steps_per_s"  # per training second (collection + updates; evaluation excluded), as perf/*_per_s

EVAL_RETURN_MEAN = "eval/return_mean"
EVAL_RETURN_STD = "eval/return_std"
EVAL_LENGTH_MEAN = "eval/length_mean"
# Crafter (envs/crafter.py), from evaluation episodes: the paper's score over its 22 achievements (0 to 100)
CRAFTER_SCORE = "crafter/score"

WM_LOSS_TOTAL = "wm/loss_total"
WM_LOSS_IMAGE = "wm/loss_image"
WM_LOSS_STATE = "wm/loss_state"
WM_LOSS_REWARD = "wm/loss_reward"
WM_LOSS_CONTINUE = "wm/loss_continue"
WM_KL_DYN = "wm/kl_dyn"
WM_KL_REP = "wm/kl_rep"
WM_KL_RAW = "wm/kl_raw"
WM_SURPRISE_TOTAL = "wm/surprise/total_log_ratio"

ACTOR_LOSS = "actor/loss"
ACTOR_ENTROPY = "actor/entropy"
CRITIC_LOSS = "critic/loss"
CRITIC_VALUE_MEAN = "critic/value_mean"
DREAM_REWARD_MEAN = "dream/reward_mean"
DREAM_VALUE_MEAN = "dream/value_mean"
DREAM_RETURN_SCALE = "dream/return_scale"
DREAM_CONTINUE_MEAN = "dream/continue_mean"

RL_AVG_Q = "rl/avg_q"
RL_EPSILON = "rl/epsilon"
RL_LR = "rl/lr"
LOSS_TD = "loss/td"
SAC_ALPHA = "sac/alpha"
SAC_Q_LOSS = "sac/q_loss"
SAC_POLICY_LOSS = "sac/policy_loss"
SAC_ENTROPY = "sac/entropy"
PPO_POLICY_LOSS = "ppo/policy_loss"  # means over the minibatch steps of one update (a PPO iteration)
PPO_VALUE_LOSS = "ppo/value_loss"
PPO_ENTROPY = "ppo/entropy"
PPO_APPROX_KL = "ppo/approx_kl"
PPO_CLIP_FRACTION = "ppo/clip_fraction"
PPO_CLIP_RANGE = "ppo/clip_range"
PPO_EXPLAINED_VARIANCE = "ppo/explained_variance"

PERF_UPDATES_PER_S = "perf/updates_per_s"
PERF_UPDATES = "perf/updates"  # updates done so far: the x axis of `dreamlab compare --x updates`
PERF_TRANSITIONS_LEARNED_PER_S = "perf/transitions_learned_per_s"
PERF_LEARNER_TRAIN_FRACTION = "perf/learner_train_fraction"
PERF_REPLAY_SIZE = "perf/replay_size"
PERF_REPLAY_BYTES = "perf/replay_bytes"
PERF_NONFINITE_UPDATES = "perf/nonfinite_updates"

COLLECT_QUEUE_DEPTH = "collect/queue_depth"  # chunks waiting for the learner, all collectors together
COLLECT_POLICY_LAG = "collect/policy_lag"  # learner updates between a chunk's acting weights and its ingestion
COLLECT_POLICY_LAG_MAX = "collect/policy_lag_max"
COLLECT_WORKER_RESTARTS = "collect/worker_restarts"  # collector processes/actors restarted so far
COLLECT_ENV_ERRORS = "collect/env_errors"  # env.step exceptions (episode cut as truncated, env reset)
COLLECT_UPDATES_OWED = "collect/updates_owed"  # updates earned by train_ratio but not yet run
COLLECT_LEARNER_WAIT_FRACTION = "collect/learner_wait_fraction"  # learner wall time spent waiting for data

MONITOR_COLLAPSE_ALARM = "monitor/collapse_alarm"
MONITOR_WM_FOCUS = "monitor/wm_focus"

# media (images and videos, every `track.media_every` updates): TensorBoard tags and file names in media/
MEDIA_OPENLOOP = "media/openloop"  # real frames, posterior reconstructions then prior dreams, and their error
# an evaluation episode every `track.video_every` evaluations: videos/eval_<env step>.mp4 and this TensorBoard tag
VIDEO_EVAL = "video/eval"

WM_LOSS_PREFIX = "wm/loss_"  # wm/loss_<observation key>: one reconstruction loss per decoded key
CRAFTER_ACHIEVEMENT_PREFIX = "crafter/achievement/"  # crafter/achievement/<name>: its success rate in [0, 1]
PREFIXES = ("grad/norm_before_clip_max/", "wm/surprise/", "collect/worker_steps_per_s/", WM_LOSS_PREFIX,
            CRAFTER_ACHIEVEMENT_PREFIX)


def wm_loss(key: str) -> str:
    """Name of the world model's reconstruction loss of one observation key, e.g. `wm/loss_image`."""
    return f"{WM_LOSS_PREFIX}{key}"


def crafter_achievement(name: str) -> str:
    """Name of a Crafter achievement's success rate over an evaluation's episodes, e.g. `collect_wood`."""
    return f"{CRAFTER_ACHIEVEMENT_PREFIX}{name}"


def grad_norm(module: str) -> str:
    """Name of the largest gradient norm before clipping of one module, e.g. `q`."""
    return f"grad/norm_before_clip_max/{module}"


def worker_steps_per_s(worker: int) -> str:
    """Env steps per second delivered to the learner by one collector process or actor."""
    return f"collect/worker_steps_per_s/{worker}"


def surprise(component: str) -> str:
    """Name of a world-model loss component's surprise log-ratio."""
    return f"wm/surprise/{component}_log_ratio"


NAMES = frozenset(v for k, v in dict(globals()).items() if k.isupper() and isinstance(v, str) and "/" in v)


def is_registered(name: str) -> bool:
    return name in NAMES or any(name.startswith(p) and len(name) > len(p) for p in PREFIXES)


def check(name: str) -> None:
    """Raise KeyError for a metric name that is not in this registry."""
    if not is_registered(name):
        raise KeyError(f"metric {name!r} is not in dreamlab/track/names.py; add it there")
