"""Typed config schema: one dataclass per section.

Every field carries a one-line `help` (shown by `dreamlab train --help`) and, where a value can be
out of range, a bound checked by `config.load.validate` (`gt`, `ge`, `le`, `choices`).
Agent sections subclass `AgentConfig`; `AGENTS` maps `agent=<name>` to its dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def opt(default: Any, help: str, **bounds: Any) -> Any:
    """A dataclass field with CLI help and optional bounds (gt, ge, le, choices)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **bounds})
    return field(default=default, metadata={"help": help, **bounds})


@dataclass
class RunConfig:
    name: str = opt("", "optional suffix of the run directory name")
    dir: str = opt("runs", "parent folder of run directories")
    hypothesis: str = opt("", "what this run tests, e.g. 'n_step 5 -> solves sooner'")
    expect: str = opt("", "expected effect on a metric, e.g. 'eval/return_mean up'")
    primary_metric: str = opt("eval/return_mean", "the metric this run is judged by")
    threshold: float | None = opt(None, "success threshold on the primary metric (summary: steps to it; default: "
                                        "the env preset's, else the env spec's reward_threshold)")
    stop_when: float | None = opt(None, "stop once an evaluation's primary metric is >= this")
    steps: int = opt(50_000, "env steps to train for", gt=0)
    resume: str = opt("", "run directory to continue from its latest checkpoint")
    profile: bool = opt(False, "profile updates 10-14 with torch.profiler: profile.txt and a trace in the run dir")


@dataclass
class EnvConfig:
    id: str = opt("CartPole-v1", "Gymnasium environment id (module:EnvId imports module first)")
    imports: list[str] = opt([], "packages imported before gymnasium.make, for those that register ids on import "
                                 "(e.g. [ale_py], [minigrid], your own)")
    kwargs: dict[str, Any] = opt({}, "keyword arguments for gymnasium.make (add with +env.kwargs.k=v)")
    num_envs: int = opt(4, "parallel envs stepped in-process by the collector", gt=0)
    action_repeat: int = opt(1, "repeat each action this many env steps (rewards summed)", gt=0)
    max_episode_steps: int | None = opt(None, "override the env's time limit (None keeps it)", gt=0)
    address: str = opt("", "env.id=remote: host:port of a `dreamlab serve-env` server")
    addresses: list[str] = opt([], "env.id=remote: several servers; env i connects to addresses[i % n]")
    token: str = opt("", "env.id=remote: shared token (empty: $DREAMLAB_ENV_TOKEN, or none)")
    timeout_s: float = opt(10.0, "env.id=remote: seconds one request may take before reconnecting", gt=0)
    retries: int = opt(5, "env.id=remote: reconnection attempts (exponential backoff from 0.1 s)", ge=0)
    pixels: bool = opt(False, "observe rendered rgb_array frames (resized in the env's process) as `image`")
    image_size: int = opt(64, "pixels, and envs whose observation is a uint8 frame: resized to image_size x "
                              "image_size", gt=0)
    grayscale: bool = opt(False, "pixels and the env's own uint8 frames: one luminance channel instead of RGB")
    resize_dict_images: bool = opt(False, "also resize the uint8 [H, W, C] frames inside a Dict observation to "
                                          "image_size x image_size (false: they keep their size)")
    keep_state: bool = opt(False, "pixels: keep the state vector beside the image as `state`")
    frame_stack: int = opt(1, "pixels, model-free agents: stack this many frames (built at sample time)", gt=0)
    interpolation: str = opt("area", "pixels and env frames: resize filter (area keeps thin lines; linear is faster)",
                             choices=["area", "linear", "nearest"])


@dataclass
class CollectConfig:
    mode: str = opt("sync", "sync: envs in the learner (reproducible); process: collector processes; ray: Ray actors",
                    choices=["sync", "process", "ray"])
    workers: int = opt(2, "process/ray: collector processes (or actors), each with its own policy copy", gt=0)
    envs_per_worker: int = opt(1, "process/ray: envs stepped by each collector (replaces env.num_envs)", gt=0)
    chunk_steps: int = opt(16, "process/ray: steps per env in one chunk sent to the learner", gt=0)
    queue_chunks: int = opt(2, "process/ray: chunks a collector may have waiting before it pauses (more: "
                            "fewer pauses, more policy lag)", gt=0)
    sync_every: int = opt(10, "process/ray: refresh the collectors' policy every this many updates", gt=0)
    ratio_tolerance: float = opt(0.05, "process/ray: updates may trail train_ratio by this fraction before "
                                 "collectors are paused", ge=0, le=1)
    worker_timeout: float = opt(120.0, "process/ray: restart a collector silent for this many seconds", gt=0)
    max_restarts: int = opt(100, "process/ray: stop the run after this many collector restarts", ge=0)
    ray_address: str = opt("", "ray: cluster address for ray.init ('' starts a local Ray instance)")


@dataclass
class ReplayConfig:
    capacity: int | None = opt(None, "env steps kept, over all env streams together (None: 100000, or "
                               "the steps that fit in max_bytes)", gt=0)
    chunk: int = opt(4096, "steps per saved chunk file (npz) when checkpointing", gt=0)
    save: bool = opt(True, "store the replay with the checkpoint (needed for exact resume)")
    max_bytes: str = opt("", "replay memory, e.g. 8GB or 512MB: keep the steps that fit (fewer if capacity is "
                         "also set; '' = by capacity)")


@dataclass
class TrainConfig:
    train_ratio: float = opt(32.0, "replayed steps per agent step (env steps / env.action_repeat); decides updates "
                             "per collection step", gt=0)
    learning_starts: int = opt(1000, "env steps (agent steps x env.action_repeat) collected before the first update",
                               ge=0)
    max_nonfinite: int = opt(5, "stop after this many non-finite updates in a row", gt=0)


@dataclass
class EvalConfig:
    every: int = opt(5000, "evaluate every this many env steps", gt=0)
    episodes: int = opt(10, "deterministic evaluation episodes", gt=0)
    num_envs: int = opt(5, "envs stepped together during evaluation", gt=0)
    sample: bool = opt(False, "sample actions from the policy (as the official DreamerV3 evaluates) instead of "
                              "its mode; IQN: its exploration epsilon")


@dataclass
class CheckpointConfig:
    every: int = opt(10_000, "save a checkpoint every this many env steps", gt=0)
    best: bool = opt(True, "keep checkpoints/best from the best evaluation")


@dataclass
class TrackConfig:
    every: int = opt(100, "write training scalars every this many updates (means over them; written between "
                          "collect/update steps, so a step that pays several updates stays in one row)", gt=0)
    tensorboard: bool = opt(True, "write TensorBoard event files beside metrics.jsonl")
    media_every: int = opt(2500, "write media (DreamerV3 open-loop dreams from images) every this many updates; "
                                 "0: never", ge=0)
    video_every: int = opt(0, "every this many evaluations, record their first episode to videos/ (H.264 MP4) "
                              "and TensorBoard; 0: never", ge=0)
    mlflow: bool = opt(False, "also log params, metrics and the run's files to MLflow (the `mlflow` extra)")
    mlflow_uri: str = opt("", "MLflow tracking URI; empty: a sqlite store in <run.dir>/mlruns/")
    print_every_s: float = opt(30.0, "without a terminal (stderr not a TTY): one plain progress line every this "
                                     "many seconds", gt=0)


@dataclass
class AgentConfig:
    name: str = opt("", "agent name (set by agent=<name>)")
    batch_size: int = opt(64, "windows per update", gt=0)


@dataclass
class ModelFreeConfig(AgentConfig):
    """Keys shared by the model-free agents (IQN, SAC)."""

    cnn: str = opt("nature", "image encoder: nature (DQN's 3 convs + 512) or dreamer (DreamerV3's)",
                   choices=["nature", "dreamer"])
    cnn_depth: int = opt(16, "cnn=dreamer: channels depth x (2, 3, 4, 4)", gt=0)


@dataclass
class IQNConfig(ModelFreeConfig):
    name: str = opt("iqn", "agent name (set by agent=<name>)")
    hidden: list[int] = opt([256, 256], "hidden layer sizes of the torso (run once per observation)", gt=0)
    head_hidden: list[int] = opt([], "hidden layers after the tau merge (run per quantile; paper: [512])", gt=0)
    shared_taus: bool = opt(False, "one draw of tau fractions per batch instead of per sample (cheaper)")
    cosines: int = opt(64, "cosine features of the quantile-fraction embedding", gt=0)
    taus_online: int = opt(64, "N: quantile fractions sampled for the online network", gt=0)
    taus_target: int = opt(64, "N': quantile fractions sampled for the target network", gt=0)
    taus_act: int = opt(32, "K: quantile fractions averaged when acting", gt=0)
    kappa: float = opt(1.0, "Huber threshold of the quantile loss", gt=0)
    gamma: float = opt(0.99, "discount", gt=0, le=1)
    n_step: int = opt(3, "n of the n-step return", gt=0)
    double_q: bool = opt(True, "choose the bootstrap action with the online network")
    lr: float = opt(1e-3, "Adam learning rate", gt=0)
    lr_end: float | None = opt(None, "anneal the learning rate linearly to this by run.steps", gt=0)
    adam_eps: float = opt(1e-4, "Adam epsilon (IQN paper: 0.01/32)", gt=0)
    grad_clip: float = opt(10.0, "clip the global gradient norm to this", gt=0)
    target_tau: float = opt(0.005, "Polyak factor of the target network; 1.0 = hard copy", gt=0, le=1)
    target_every: int = opt(1, "update the target network every this many updates", gt=0)
    eps_start: float = opt(1.0, "epsilon-greedy at the start", ge=0, le=1)
    eps_end: float = opt(0.01, "epsilon-greedy after the decay", ge=0, le=1)
    eps_decay_steps: int = opt(10_000, "env steps of linear epsilon decay", gt=0)


@dataclass
class DreamerConfig(AgentConfig):
    name: str = opt("dreamer", "agent name (set by agent=<name>)")
    batch_size: int = opt(16, "sequences per update (B)", gt=0)
    batch_length: int = opt(64, "steps per sequence (T)", gt=1)
    size: str = opt("1m", "model size preset (presets/size/<size>.yaml); fields set after it win",
                    choices=["xs", "cpu", "1m", "12m"])
    deter: int = opt(512, "deterministic state size D (a multiple of blocks)", gt=0)
    hidden: int = opt(64, "hidden width inside the RSSM", gt=0)
    groups: int = opt(32, "stochastic latent groups G", gt=0)
    classes: int = opt(4, "classes per latent group K", gt=1)
    blocks: int = opt(8, "blocks of the block-diagonal GRU", gt=0)
    units: int = opt(64, "width of encoder, decoder and heads", gt=0)
    cnn_depth: int = opt(4, "image encoder/decoder channels: depth x (2, 3, 4, 4) over 4 stages", gt=0)
    cnn_sampling: str = opt("pool", "how CNN stages resample: pool (official 2024: 5x5 conv + max-pool / "
                            "upsample) or stride (2023 paper: 4x4 conv of stride 2, about 6x fewer FLOPs)",
                            choices=["pool", "stride"])
    mlp_layers: int = opt(3, "layers of the vector encoder and decoder", gt=0)
    ac_layers: int = opt(3, "layers of the actor and critic", gt=0)
    img_layers: int = opt(2, "hidden layers of the RSSM prior (official imglayers=2; SheepRL's sizes: 1)", gt=0)
    bins: int = opt(255, "twohot bins of reward and critic heads (odd)", gt=2)
    unimix: float = opt(0.01, "uniform mixture in latent categoricals", ge=0, le=1)
    imag_horizon: int = opt(15, "imagination horizon H", gt=0)
    imag_starts: int = opt(0, "imagination start states sampled from the B*T posteriors; 0 = all", ge=0)
    gamma: float = opt(0.997, "discount folded into the continue target: 1 - 1/333", gt=0, le=1)
    lam: float = opt(0.95, "lambda of the lambda returns", ge=0, le=1)
    free_nats: float = opt(1.0, "free bits of each KL term (per step, summed over groups)", ge=0)
    free_bits_mode: str = opt("clip", "clip (official) or straight_through (gradient of the raw KL)",
                              choices=["clip", "straight_through"])
    beta_dyn: float = opt(1.0, "scale of the dynamics KL loss", ge=0)
    beta_rep: float = opt(0.1, "scale of the representation KL loss", ge=0)
    beta_pred: float = opt(1.0, "scale of the decoder, reward and continue losses", ge=0)
    actor_entropy: float = opt(3e-4, "entropy bonus of the actor", ge=0)
    actor_grad: str = opt("reinforce", "Box actions: reinforce (official 2024: score function on normalised "
                          "advantages) or dynamics (2023 paper: backpropagate returns through the imagined dynamics)",
                          choices=["reinforce", "dynamics"])
    mlp_keys: str = opt(".*", "regex (full match) of the vector observation keys encoded and decoded")
    cnn_keys: str = opt(".*", "regex (full match) of the uint8 image keys encoded and decoded")
    slow_critic_rate: float = opt(0.02, "EMA rate of the slow critic per update", gt=0, le=1)
    slow_critic_reg: float = opt(1.0, "scale of the critic's pull toward the slow critic", ge=0)
    repval_scale: float = opt(0.3, "scale of the replay value loss (0 turns it off)", ge=0)
    optimizer: str = opt("laprop", "laprop (one optimizer, AGC, 2024) or adam (three optimizers, 2023)",
                         choices=["laprop", "adam"])
    lr: float = opt(4e-5, "LaProp learning rate (warmed up linearly)", gt=0)
    warmup: int = opt(1000, "LaProp learning-rate warmup updates", ge=0)
    agc: float = opt(0.3, "adaptive gradient clipping ratio (LaProp chain)", gt=0)
    wm_lr: float = opt(1e-4, "Adam: world-model learning rate", gt=0)
    ac_lr: float = opt(3e-5, "Adam: actor and critic learning rate", gt=0)
    wm_ac_ratio: int = opt(1, "world-model updates per actor-critic update", gt=0)
    wm_warmup_updates: int = opt(0, "world-model-only updates before the actor-critic starts", ge=0)
    load_world_model: str = opt("", "run directory whose world model is loaded and frozen")
    wm_focus_threshold: float | None = opt(
        None, "surprise gate: world-model focus while wm/surprise/total_log_ratio exceeds this (None: off)")
    wm_focus_mode: str = opt("pause_ac", "while focused: pause the actor-critic, or add extra world-model updates",
                             choices=["pause_ac", "extra_wm"])
    wm_focus_extra: int = opt(1, "extra_wm: world-model-only updates added after each surprising update", gt=0)
    bf16: bool = opt(False, "bfloat16 autocast for matmuls (CPU with AVX-512 bf16, or CUDA)")
    compile: bool = opt(False, "torch.compile the update's forward and backward (a C++ compiler on CPU): "
                               "1-2 minutes to compile cold, seconds from the inductor cache, then faster updates")
    compile_scope: str = opt("steps", "what agent.compile traces: steps (the update between its loops and the "
                             "filtering and imagination cells, each once) or update (the whole update with its "
                             "loops unrolled: several times the compile time for about the same speed)",
                             choices=["steps", "update"])


@dataclass
class SACConfig(ModelFreeConfig):
    name: str = opt("sac", "agent name (set by agent=<name>)")
    batch_size: int = opt(256, "transitions per update", gt=0)
    hidden: list[int] = opt([256, 256], "hidden layer sizes of the actor and of each critic", gt=0)
    critics: int = opt(2, "Q critics; the target and the actor use their minimum", gt=0)
    gamma: float = opt(0.99, "discount", gt=0, le=1)
    lr: float = opt(3e-4, "Adam learning rate of actor, critics and temperature", gt=0)
    lr_end: float | None = opt(None, "anneal the learning rate linearly to this by run.steps (zoo's lin_)", ge=0)
    tau: float = opt(0.005, "Polyak factor of the target critics per update", gt=0, le=1)
    target_every: int = opt(1, "update the target critics every this many updates", gt=0)
    alpha: float = opt(1.0, "entropy temperature (the start value when learned)", gt=0)
    learn_alpha: bool = opt(True, "tune the temperature toward target_entropy")
    target_entropy: float | None = opt(None, "entropy target of the temperature; None = -action dims")
    log_std_min: float = opt(-20.0, "lower clamp of the actor's log std")
    log_std_max: float = opt(2.0, "upper clamp of the actor's log std")
    grad_clip: float | None = opt(None, "clip each update's global gradient norm (None: no clipping)", gt=0)
    sequential: bool = opt(False, "SB3's order: step the critics, then train the actor against the updated critics "
                           "(two backward passes); false: one backward over all losses")


@dataclass
class PPOConfig(ModelFreeConfig):
    """PPO with Stable-Baselines3's names and defaults (presets/agent/ppo.yaml; rl-zoo's per-env
    settings in the experiment presets). It learns from the latest rollout of every env, in order."""

    name: str = opt("ppo", "agent name (set by agent=<name>)")
    n_steps: int = opt(2048, "rollout length: steps of each env between updates", gt=0)
    batch_size: int = opt(64, "minibatch size (transitions) of each gradient step", gt=0)
    n_epochs: int = opt(10, "passes over each rollout", gt=0)
    gamma: float = opt(0.99, "discount", gt=0, le=1)
    gae_lambda: float = opt(0.95, "GAE lambda", ge=0, le=1)
    clip_range: float = opt(0.2, "clip of the probability ratio", gt=0)
    clip_range_end: float | None = opt(None, "anneal clip_range linearly to this by run.steps (zoo's lin_)", ge=0)
    lr: float = opt(3e-4, "Adam learning rate", gt=0)
    lr_end: float | None = opt(None, "anneal the learning rate linearly to this by run.steps (zoo's lin_)", ge=0)
    ent_coef: float = opt(0.0, "entropy bonus weight", ge=0)
    vf_coef: float = opt(0.5, "value loss weight", ge=0)
    max_grad_norm: float = opt(0.5, "clip each step's global gradient norm", gt=0)
    normalize_advantage: bool = opt(True, "normalize advantages within each minibatch")
    hidden: list[int] = opt([64, 64], "hidden layer sizes of the actor and of the critic (tanh)", gt=0)
    log_std_init: float = opt(0.0, "Box actions: initial log std of the state-independent Gaussian")


AGENTS: dict[str, type[AgentConfig]] = {"iqn": IQNConfig, "dreamer": DreamerConfig, "sac": SACConfig,
                                        "ppo": PPOConfig}


@dataclass
class Config:
    seed: int = opt(0, "run seed: envs, networks and sampling derive from it", ge=0)
    device: str = opt("auto", "torch device", choices=["auto", "cpu", "cuda"])
    threads: int = opt(0, "torch CPU threads; 0 = all cores of this machine", ge=0)
    run: RunConfig = field(default_factory=RunConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    agent: AgentConfig = field(default_factory=IQNConfig)
