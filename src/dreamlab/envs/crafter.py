"""Crafter (the crafter extra): `env.id=CrafterReward-v1` (preset env=crafter), `CrafterNoReward-v1`.

`crafter.Env` is a plain old-gym-style env (`reset() -> obs`, `step(a) -> obs, reward, done, info`,
its seed given at construction) and no maintained Gymnasium adapter exists (Shimmy has none), so
`CrafterEnv` presents it as a Gymnasium env: observations `{"image": uint8 [S, S, 3]}` at
`env.image_size` (crafter renders at that size itself), rewards as crafter gives them, death as the
terminal and crafter's own episode length (10000 steps) as a truncation. `reset(seed=s)` starts
crafter's episode sequence of seed s (crafter seeds each world from (seed, episode number)).

Evaluation logs `crafter/achievement/<name>` per achievement (the share of the evaluation's episodes
that unlocked it, in [0, 1]) and `crafter/score`, the Crafter paper's score over all 22
achievements: exp(mean(ln(1 + s_i))) - 1 with the success rates s_i in percent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from dreamlab.config.schema import EnvConfig
from dreamlab.track import names

IDS = {"CrafterReward-v1": True, "CrafterNoReward-v1": False}  # id -> crafter's `reward` argument
ACTIONS = 17  # len(crafter.constants.actions)
ACHIEVEMENTS = (  # crafter.constants.achievements, in its order (a test checks)
    "collect_coal", "collect_diamond", "collect_drink", "collect_iron", "collect_sapling", "collect_stone",
    "collect_wood", "defeat_skeleton", "defeat_zombie", "eat_cow", "eat_plant", "make_iron_pickaxe",
    "make_iron_sword", "make_stone_pickaxe", "make_stone_sword", "make_wood_pickaxe", "make_wood_sword",
    "place_furnace", "place_plant", "place_stone", "place_table", "wake_up",
)
RENDER_FPS = 10


def is_crafter(env_id: str) -> bool:
    return env_id in IDS


def prepare(cfg: EnvConfig, kwargs: dict[str, Any]) -> None:
    """make_env's hook for Crafter ids: register them, frames at env.image_size (crafter renders at that size)."""
    register(cfg.id)
    if cfg.pixels:
        from dreamlab.config.load import ConfigError

        raise ConfigError(f"env.pixels=true: {cfg.id} observes its frames already (env.image_size sizes them); "
                          "leave env.pixels=false")
    kwargs.setdefault("size", cfg.image_size)


def register(env_id: str) -> None:
    """Check the extra is installed and register the Crafter ids with Gymnasium (once)."""
    try:
        import crafter  # noqa: F401
    except ImportError as exc:
        from dreamlab.config.load import ConfigError

        raise ConfigError(f"env.id={env_id}: needs the crafter extra: pip install -e '.[crafter]' ({exc})") from None
    for name, reward in IDS.items():
        if name not in gym.registry:
            gym.register(name, entry_point=f"{__name__}:CrafterEnv", kwargs={"reward": reward})


class CrafterEnv(gym.Env):
    """crafter.Env as a Gymnasium env; the crafter.Env is built at the first reset and rebuilt at each
    reset(seed=...), so one seed always gives the same sequence of worlds."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, size: int = 64, reward: bool = True, length: int = 10000, area: Sequence[int] = (64, 64),
                 view: Sequence[int] = (9, 9), render_mode: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: Crafter renders rgb_array frames only")
        self.render_mode = render_mode
        self._options = {"area": tuple(area), "view": tuple(view), "size": (size, size), "reward": reward,
                         "length": length}
        self.observation_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (size, size, 3), np.uint8)})
        self.action_space = gym.spaces.Discrete(ACTIONS)
        self._env: Any = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if seed is not None or self._env is None:
            import crafter

            world_seed = seed if seed is not None else int(self.np_random.integers(2**31 - 1))
            self._env = crafter.Env(seed=world_seed, **self._options)
        return {"image": self._env.reset()}, {}

    def step(self, action: Any) -> tuple[dict, float, bool, bool, dict]:
        obs, reward, done, info = self._env.step(int(action))
        info["player_pos"] = np.array(info["player_pos"])  # crafter returns its player's own array each step
        terminated = info["discount"] == 0  # the player died
        return {"image": obs}, float(reward), bool(terminated), bool(done and not terminated), info

    def render(self) -> np.ndarray:
        return self._env.render()


def score(success_rates: Sequence[float]) -> float:
    """The Crafter score of success rates in percent: exp(mean(ln(1 + s_i))) - 1 (0 to 100)."""
    rates = np.asarray(success_rates, np.float64)
    return float(np.exp(np.mean(np.log1p(rates))) - 1.0)


def episode_metrics(infos: Sequence[dict[str, Any]]) -> dict[str, float]:
    """From the last step's info of each Crafter episode: `crafter/achievement/<name>` (the share of the
    episodes that unlocked it) for all 22 achievements and `crafter/score`; {} when no info has achievements."""
    unlocked = [info["achievements"] for info in infos if isinstance(info.get("achievements"), dict)]
    if not unlocked:
        return {}
    metrics = {names.crafter_achievement(name): float(np.mean([counts.get(name, 0) > 0 for counts in unlocked]))
               for name in ACHIEVEMENTS}
    metrics[names.CRAFTER_SCORE] = score([100.0 * rate for rate in metrics.values()])
    return metrics
