"""Envs from packages: `env.id=module:EnvId`, `env.imports=[pkg]`, what to install when one is missing."""

import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from dreamlab.config.load import ConfigError, load
from dreamlab.config.schema import EnvConfig
from dreamlab.envs.imports import MissingModule, install_hint
from dreamlab.envs.make import make_env
from dreamlab.track.run_dir import env_name, new_run_dir

PACKAGE = "dreamlab_tiny_pkg"  # written into a temporary folder; its import registers Tiny-v0
TINY = "Tiny-v0"
SOURCE = textwrap.dedent('''
    import gymnasium as gym
    import numpy as np


    class Tiny(gym.Env):
        observation_space = gym.spaces.Box(-1, 1, (3,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(3, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.full(3, 0.5 * int(action), np.float32), 1.0, self.t >= 8, False, {}


    gym.register("Tiny-v0", entry_point=Tiny)
''')


def forget_package() -> None:
    """As in a fresh process: the package not imported, Tiny-v0 not registered."""
    sys.modules.pop(PACKAGE, None)
    gym.registry.pop(TINY, None)


@pytest.fixture
def package(tmp_path, monkeypatch):
    """The tiny package on sys.path (collector processes inherit it), not imported yet."""
    (tmp_path / f"{PACKAGE}.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    forget_package()
    yield PACKAGE
    forget_package()


def test_a_module_colon_id_imports_the_module_then_makes_the_env(package):
    env = make_env(EnvConfig(id=f"{package}:{TINY}"))
    obs, _ = env.reset(seed=0)
    assert set(obs) == {"state"} and obs["state"].shape == (3,)
    assert env.step(1)[0]["state"].tolist() == [0.5] * 3


def test_env_imports_are_imported_before_gymnasium_make(package):
    with pytest.raises(ValueError, match="need env.imports=\\[package\\]") as info:
        make_env(EnvConfig(id=TINY))  # nothing registered it yet
    assert "\n" not in str(info.value)
    env = make_env(EnvConfig(id=TINY, imports=[package]))
    assert package in sys.modules and env.observation_space["state"].shape == (3,)


def test_an_unknown_id_after_the_imports_is_one_line(package):
    with pytest.raises(ValueError, match="env.id='Tinyy-v0': Environment `Tinyy` doesn't exist") as info:
        make_env(EnvConfig(id="Tinyy-v0", imports=[package]))
    assert "\n" not in str(info.value) and package in sys.modules


@pytest.mark.parametrize("name, install", [
    ("dreamlab_no_such_package", "pip install dreamlab_no_such_package"),
    ("ale_py", "pip install -e '.[atari]'"),
    ("shimmy", "pip install -e '.[dmc]'"),
    ("dm_control.suite", "pip install -e '.[dmc]'"),
    ("crafter", "pip install -e '.[crafter]'"),
])
def test_a_missing_package_names_what_to_install(monkeypatch, name, install):
    for module in {name, name.split(".")[0]}:  # not installed, as far as import knows
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ConfigError) as info:
        make_env(EnvConfig(imports=[name]))
    message = str(info.value)
    assert message.startswith(f"env.imports: cannot import {name!r}") and message.endswith(install)
    assert "\n" not in message


def test_a_package_missing_a_dependency_names_the_dependency(tmp_path, monkeypatch):
    (tmp_path / "dreamlab_needs_dep.py").write_text("import dreamlab_missing_dep  # noqa\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="no module named 'dreamlab_missing_dep'.*pip install dreamlab_missing_dep$"):
        make_env(EnvConfig(imports=["dreamlab_needs_dep"]))
    assert install_hint("ale_py.env") == "pip install -e '.[atari]'"


def test_a_missing_module_of_a_colon_id_names_what_to_install():
    with pytest.raises(MissingModule) as info:  # a ModuleNotFoundError, as train/evaluate.py env_errors expects
        make_env(EnvConfig(id="dreamlab_no_such_module:Env-v0"))
    assert str(info.value) == ("env.id=dreamlab_no_such_module:Env-v0: cannot import the module "
                               "'dreamlab_no_such_module' (no module named 'dreamlab_no_such_module'); "
                               "install it: pip install dreamlab_no_such_module")
    assert isinstance(info.value, ModuleNotFoundError) and info.value.name == "dreamlab_no_such_module"


@pytest.mark.parametrize("bad", ["bad-name", "", "pkg..sub", "2pkg"])
def test_env_imports_must_be_module_names(bad):
    with pytest.raises(ConfigError, match="env.imports: .* is not a module name"):
        load([f"env.imports=[{bad!r}]"])
    assert load(["env.imports=[ale_py,my_envs.grid]"])[1].env.imports == ["ale_py", "my_envs.grid"]


def test_run_directory_names_leave_out_the_module(tmp_path):
    assert env_name("dreamlab_tiny_pkg:Tiny-v0") == "tiny"
    assert (env_name("ALE/Pong-v5"), env_name("CartPole-v1"), env_name("dm_control/walker-walk-v0")) == (
        "pong", "cartpole", "walker-walk")
    assert env_name("pkg.sub:Odd Name!-v2") == "odd-name"
    run_dir = new_run_dir(str(tmp_path), "iqn", "dreamlab_tiny_pkg:Tiny-v0")
    assert run_dir.name.endswith("_iqn_tiny") and ":" not in run_dir.name


def test_collector_processes_eval_and_load_import_env_imports(package, tiny, tmp_path):
    """Trained with collector processes, which import the package themselves (spawned: nothing is
    inherited but sys.path); then read back by dreamlab.load in a process that has not imported it."""
    import dreamlab
    from dreamlab.train.run import train

    result = train([*tiny, f"env.id={TINY}", f"env.imports=[{package}]", "collect.mode=process",
                    "collect.workers=1", "collect.chunk_steps=8", "run.steps=200", "eval.every=200",
                    "checkpoint.every=200"], quiet=True)
    assert result.summary["env_steps"] >= 200 and result.summary["updates"] > 0
    assert "_iqn_tiny" in result.run_dir.name
    forget_package()
    policy = dreamlab.load(result.run_dir, checkpoint="latest")
    env = dreamlab.make_env(result.run_dir)
    obs, _ = env.reset(seed=0)
    action, _ = policy.predict(obs, deterministic=True)
    assert env.action_space.contains(int(np.asarray(action)))
    env.step(action)


def test_cli_train_with_a_missing_package_is_one_line_exit_2(tiny, tmp_path):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", "--quiet", *tiny,
                             "env.imports=[dreamlab_no_such_package]"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("dreamlab: error: env.imports: cannot import 'dreamlab_no_such_package' (no module "
                             "named 'dreamlab_no_such_package'); install it: pip install dreamlab_no_such_package\n")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())
