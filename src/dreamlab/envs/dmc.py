"""The DeepMind Control Suite through Shimmy: `env.id=dm_control/<domain>-<task>-v0`.

Shimmy registers the `dm_control/` ids with Gymnasium when `shimmy` is imported (Gymnasium 1.x
loads no plugins by itself), so `import_dmc` imports it lazily, only for those ids. Importing this
module makes headless rendering use EGL on Linux unless MUJOCO_GL is already set.

From pixels, frames are rendered by MuJoCo at the requested size (no resize) from camera 0
(camera 2 for quadruped, as in DreamerV3). Shimmy's own render() builds a new dm_control Camera
(and MjvScene) for every frame; `PersistentCamera` keeps one per physics instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np

if sys.platform.startswith("linux"):  # headless rendering (dm_control and Gymnasium's MuJoCo envs), set before
    os.environ.setdefault("MUJOCO_GL", "egl")  # dm_control or mujoco's renderer is first imported

PREFIX = "dm_control/"
CAMERAS = {"quadruped": 2}  # domain -> camera id; every other domain uses camera 0


def is_dmc(env_id: str) -> bool:
    return env_id.startswith(PREFIX)


def domain(env_id: str) -> str:
    """'dm_control/walker-walk-v0' -> 'walker'."""
    return env_id[len(PREFIX):].split("-", 1)[0]


def camera_id(env_id: str) -> int:
    return CAMERAS.get(domain(env_id), 0)


def import_dmc(env_id: str) -> None:
    """Import dm_control and shimmy (which registers the dm_control/ ids); a clear error without them."""
    try:
        import dm_control.suite  # noqa: F401  (fails with mujoco >= 4: the dmc extra pins mujoco < 4)
        import shimmy  # noqa: F401  (registers the dm_control/ ids on import)
    except (ImportError, AttributeError) as exc:
        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"env.id={env_id}: needs the dmc extra: pip install -e '.[dmc]' ({cause})") from None


def render_kwargs(env_id: str, size: int) -> dict[str, Any]:
    """Shimmy's `render_kwargs` for square frames of `size` from the task's camera."""
    return {"width": size, "height": size, "camera_id": camera_id(env_id)}


class PersistentCamera(gym.Wrapper):
    """render() -> uint8 [size, size, 3] through one dm_control Camera, rebuilt only when the
    physics, its model or its GL contexts change. The frames equal Shimmy's
    `physics.render(size, size, camera_id=...)`; only the per-frame Camera construction goes."""

    def __init__(self, env: gym.Env, size: int, camera: int):
        super().__init__(env)
        if env.render_mode != "rgb_array":
            raise ValueError(f"PersistentCamera needs render_mode='rgb_array', got {env.render_mode!r}")
        self.size, self.camera = size, camera
        self._camera: Any = None
        self._built_for: tuple[Any, ...] = ()
        self._check(self._physics())

    def _physics(self) -> Any:
        base: Any = self.env.unwrapped  # a dm_control env through Shimmy (untyped): its MuJoCo physics
        return base.physics

    def _check(self, physics: Any) -> None:
        buffer = physics.model.vis.global_
        if self.size > min(buffer.offwidth, buffer.offheight):
            raise ValueError(f"env.image_size={self.size}: larger than the model's offscreen framebuffer "
                             f"{buffer.offwidth}x{buffer.offheight}")
        if self.camera >= physics.model.ncam:
            raise ValueError(f"camera {self.camera}: the model has {physics.model.ncam} cameras")

    def render(self) -> np.ndarray:
        from dm_control.mujoco import Camera

        physics = self._physics()
        key = (physics, physics.model, physics.contexts)
        if self._camera is None or any(a is not b for a, b in zip(key, self._built_for, strict=True)):
            self._camera = Camera(physics, height=self.size, width=self.size, camera_id=self.camera)
            self._built_for = key
        return np.array(self._camera.render())  # a copy: the camera reuses its buffer

    def close(self) -> None:
        self._camera, self._built_for = None, ()
        super().close()
