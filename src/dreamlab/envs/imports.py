"""Packages that register Gymnasium ids when imported: `env.imports=[pkg, ...]` and `env.id=module:EnvId`.

Gymnasium 1.x loads no plugins by itself, so ids such as `ALE/Pong-v5` (ale_py), `MiniGrid-Empty-5x5-v0`
(minigrid) or a user's own exist only once their package is imported. `make_env` imports
`env.imports` (and the module of a `module:EnvId` id) before `gymnasium.make`, in whichever process
builds the env: the learner, every collector process or Ray actor, `dreamlab eval` and
`dreamlab.load`. A package that is not installed is one line naming what to install: the dreamlab
extra that provides it where there is one, else `pip install <name>`.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

# top-level module -> the dreamlab extra that installs it (pyproject.toml [project.optional-dependencies])
EXTRAS = {
    "ale_py": "atari",
    "crafter": "crafter",
    "shimmy": "dmc",
    "dm_control": "dmc",
    "mujoco": "mujoco",
    "Box2D": "box2d",
}


class MissingModule(ModuleNotFoundError):
    """The module of a `module:EnvId` id cannot be imported; the message says what to install.

    A ModuleNotFoundError, as Gymnasium raises for these ids, so callers that already handle those
    (train/evaluate.py `env_errors`) keep working."""


def install_hint(missing: str) -> str:
    """What to run for a missing module: the dreamlab extra that provides it, else `pip install <top-level name>`."""
    top = missing.split(".")[0]
    extra = EXTRAS.get(top)
    return f"pip install -e '.[{extra}]'" if extra else f"pip install {top}"


def _missing(exc: ModuleNotFoundError, name: str) -> tuple[str, str]:
    """(the module that is missing, what to do about it)."""
    missing = exc.name or name
    top = missing.split(".")[0]
    if top != missing and _installed(top):  # the package is there, not this submodule
        return missing, f"{top} has no module {missing!r}; check the name"
    return missing, f"install it: {install_hint(missing)}"


def _installed(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # a module blocked or half-imported in sys.modules
        return False


def import_module(name: str, key: str) -> ModuleType:
    """Import `name` for the config key `key`; a ConfigError of one line when it cannot be imported.

    Only import failures are caught (not installed, a missing dependency, a broken shared library);
    an exception raised by the package's own code passes through with its traceback."""
    from dreamlab.config.load import ConfigError

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing, todo = _missing(exc, name)
        raise ConfigError(f"{key}: cannot import {name!r} (no module named {missing!r}); {todo}") from None
    except ImportError as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"{key}: importing {name!r} failed: {first}") from None


def import_packages(names: list[str]) -> None:
    """Import every entry of env.imports, in order."""
    for name in names:
        import_module(name, "env.imports")


def import_id_module(env_id: str) -> None:
    """Import the module of a `module:EnvId` id (Gymnasium would import it in gymnasium.make too,
    with a message that names nothing to install). MissingModule when it is not importable."""
    module = env_id.partition(":")[0]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing, todo = _missing(exc, module)
        error = MissingModule(f"env.id={env_id}: cannot import the module {module!r} (no module named "
                              f"{missing!r}); {todo}", name=missing)
        raise error from None
    except ImportError as exc:
        from dreamlab.config.load import ConfigError

        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"env.id={env_id}: importing the module {module!r} failed: {first}") from None
