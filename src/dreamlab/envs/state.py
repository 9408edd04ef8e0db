"""Capture and restore an env's simulator state, so a resumed run continues mid-episode exactly.

Only envs known to keep their whole state in plain attributes are captured (Gymnasium's classic
control family, or any env defining `get_state()` / `set_state(state)`); for the rest `capture`
returns None and the collector starts fresh episodes on resume.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np

_SIMPLE = (int, float, bool, np.ndarray, np.generic, type(None))
_SKIP = {"screen", "clock", "isopen", "render_mode", "spec", "metadata"}


@runtime_checkable
class Stateful(Protocol):
    """An env that captures its whole state itself."""

    def get_state(self) -> Any: ...

    def set_state(self, state: Any) -> None: ...


def _plain_attributes(obj: Any) -> dict[str, Any]:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(obj).items()
            if k not in _SKIP and isinstance(v, _SIMPLE)}


def _layers(env: gym.Env) -> list[Any]:
    layers = [env]
    while isinstance(layers[-1], gym.Wrapper):
        layers.append(layers[-1].env)
    return layers


def capture(env: gym.Env) -> dict[str, Any] | None:
    base = env.unwrapped
    if isinstance(base, Stateful):
        sim = {"custom": base.get_state()}
    elif type(base).__module__.startswith("gymnasium.envs.classic_control"):
        sim = {"attributes": _plain_attributes(base)}
    else:
        return None
    return {
        **sim,
        "np_random": base.np_random.bit_generator.state,
        "wrappers": [_plain_attributes(layer) for layer in _layers(env)[:-1]],
    }


def restore(env: gym.Env, state: dict[str, Any]) -> None:
    base = env.unwrapped
    if "custom" in state:
        if not isinstance(base, Stateful):
            raise ValueError(f"{type(base).__name__} has no set_state for the state captured from a get_state")
        base.set_state(state["custom"])
    else:
        for key, value in state["attributes"].items():
            setattr(base, key, value)
    base.np_random.bit_generator.state = state["np_random"]
    for layer, attributes in zip(_layers(env)[:-1], state["wrappers"], strict=True):
        for key, value in attributes.items():
            setattr(layer, key, value)
