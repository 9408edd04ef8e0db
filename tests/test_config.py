import subprocess
import sys

import pytest

from dreamlab.agents.dreamer.world_model import RSSM
from dreamlab.config.load import ConfigError, compose, format_help, load, preset_names, validate
from dreamlab.config.schema import AGENTS


def test_layers_and_overrides_compose():
    cfg, obj = load(["agent=iqn", "env=cartpole", "agent.lr=3e-4", "+env.kwargs.sutton_barto_reward=true",
                     "run.hypothesis=n_step 5 -> sooner", "seed=3"])
    assert obj.agent.lr == pytest.approx(3e-4)
    assert obj.env.kwargs == {"sutton_barto_reward": True}
    assert obj.run.hypothesis == "n_step 5 -> sooner"
    assert obj.seed == 3
    assert obj.run.threshold == 475  # from the env preset
    assert cfg.agent.name == "iqn"


def test_delete_dict_entry():
    _, obj = load(["+env.kwargs.a=1", "+env.kwargs.b=2", "~env.kwargs.a"])
    assert obj.env.kwargs == {"b": 2}


def test_experiment_preset_layers_over_agent_and_env():
    _, obj = load(["experiment=demo_iqn", "run.steps=123"])
    assert obj.run.name == "demo_iqn" and obj.run.stop_when == 475 and obj.run.steps == 123


@pytest.mark.parametrize("override, words", [
    ("agent.foo=1", "unknown config key 'agent.foo'"),
    ("agent.lr=-1", "agent.lr: expected a value > 0"),
    ("agent.batch_size=0", "agent.batch_size: expected a value > 0"),
    ("agent.batch_size=abc", "agent.batch_size"),
    ("agent.hidden=[64,0]", "agent.hidden: expected a value > 0"),
    ("device=tpu", "device: expected one of"),
    ("agent.gamma=1.5", "agent.gamma: expected a value <= 1"),
    ("agent=nope", "unknown agent='nope'"),
    ("env=nope", "unknown env='nope'"),
    ("seed=0,1,2", "dreamlab sweep"),
    ("+agent.lr=1", "key exists already"),
    ("~agent.lr", "schema keys cannot be deleted"),
    ("env.kwargs.x=1", "+env.kwargs.x"),
    ("run.steps=", "run.steps"),
    ("=3", "cannot parse"),
])
def test_bad_overrides_are_one_line_errors(override, words):
    with pytest.raises(ConfigError) as info:
        compose([override])
    message = str(info.value)
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize("overrides, words", [
    (["replay.max_bytes=lots"], "replay.max_bytes='LOTS'"),
    (["replay.max_bytes=inf"], "positive, finite"),
    (["env.frame_stack=4"], "only with env.pixels=true"),
    (["agent=dreamer", "env.pixels=true", "env.frame_stack=4"], "RSSM carries the history"),
    (["agent=dreamer", "env.pixels=true", "env.image_size=40"], "multiple of 16"),
    (["agent=iqn", "env.pixels=true", "env.image_size=32"], "agent.cnn=nature needs >= 36"),
    (["agent=sac", "env=pendulum", "env.pixels=true", "agent.cnn=dreamer", "env.image_size=84"], "multiple of 16"),
])
def test_keys_valid_alone_but_not_together_are_one_line_errors(overrides, words):
    with pytest.raises(ConfigError) as info:
        load(overrides)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_pixel_combinations_that_work_validate():
    load(["agent=iqn", "env.pixels=true", "env.image_size=36", "env.frame_stack=4"])
    load(["agent=iqn", "env.pixels=true", "env.image_size=32", "agent.cnn=dreamer"])
    load(["agent=dreamer", "env.pixels=true", "env.image_size=64", "replay.max_bytes=8GB"])
    load(["agent=iqn", "env=remote", "env.address=h:1", "env.frame_stack=4"])  # a server may send the frames
    load(["agent=iqn", "env=atari100k", "env.id=ALE/Pong-v5", "env.frame_stack=4"])  # Atari's screen is a frame


def test_help_lists_groups_and_keys():
    text = format_help()
    assert "agent" in text and "iqn" in text and "cartpole" in text and "demo" in text
    assert "agent.taus_online" in text and "replay.capacity" in text


def test_cli_bad_override_exits_2_without_run_dir(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "train", f"run.dir={tmp_path / 'runs'}",
                             "agent.lr=-0.1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "agent.lr" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_config_prints_resolved_config():
    result = subprocess.run([sys.executable, "-m", "dreamlab.cli", "config", "agent=iqn", "env=cartpole"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "id: CartPole-v1" in result.stdout and "taus_online: 32" in result.stdout


def test_size_presets_layer_under_the_command_line():
    _, obj = load(["agent=dreamer", "agent.size=12m"])
    assert (obj.agent.deter, obj.agent.hidden, obj.agent.classes, obj.agent.units) == (2048, 256, 16, 256)
    _, obj = load(["agent=dreamer", "agent.deter=1024", "agent.size=12m"])
    assert obj.agent.deter == 1024 and obj.agent.units == 256  # a field set on the command line wins
    _, obj = load(["experiment=dreamer_cartpole"])
    assert obj.agent.name == "dreamer" and obj.agent.size == "cpu" and obj.agent.batch_length == 32


@pytest.mark.parametrize("preset", preset_names("experiment"))
def test_every_experiment_preset_loads_and_validates(preset):
    _, obj = load([f"experiment={preset}"])
    assert obj.run.steps > 0 and obj.agent.name in AGENTS


def test_xs_size_has_one_prior_layer_like_sheeprl_xs():
    _, obj = load(["agent=dreamer", "agent.size=xs"])
    rssm = RSSM(2, 8, obj.agent.deter, obj.agent.hidden, obj.agent.groups, obj.agent.classes, obj.agent.blocks,
                obj.agent.unimix, obj.agent.img_layers)
    assert obj.agent.img_layers == 1 and len(rssm.prior_net) == 2  # one hidden layer, then the logits


def test_dreamer_keys_are_rejected_for_iqn_and_vice_versa():
    with pytest.raises(ConfigError, match="unknown config key 'agent.imag_horizon'"):
        compose(["agent=iqn", "agent.imag_horizon=10"])
    with pytest.raises(ConfigError, match="agent.free_bits_mode: expected one of"):
        compose(["agent=dreamer", "agent.free_bits_mode=sometimes"])


def test_the_surprise_gate_keys_live_on_the_dreamer():
    cfg = validate(compose(["agent=dreamer", "agent.wm_focus_threshold=0.5", "agent.wm_focus_mode=extra_wm",
                            "agent.wm_focus_extra=2"]))
    assert (cfg.agent.wm_focus_threshold, cfg.agent.wm_focus_mode, cfg.agent.wm_focus_extra) == (0.5, "extra_wm", 2)
    for old in ("train.wm_focus_threshold=0.5", "train.wm_focus_mode=extra_wm", "train.wm_focus_extra=2"):
        with pytest.raises(ConfigError, match=f"unknown config key '{old.partition('=')[0]}'"):
            compose(["agent=dreamer", old])
    with pytest.raises(ConfigError, match="unknown config key 'agent.wm_focus_threshold'"):
        compose(["agent=iqn", "agent.wm_focus_threshold=0.5"])  # no world model, no gate


def test_overrides_after_an_option_are_kept(tmp_path, capsys):
    from dreamlab.cli import main

    # argparse alone would stop at --quiet and reject `agent.nope=1` as an unknown argument
    assert main(["train", f"run.dir={tmp_path}", "--quiet", "agent.nope=1"]) == 2
    assert "agent.nope" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("overrides, threshold", [
    ([], 475),  # the cartpole preset
    (["env=pendulum"], -200),  # the pendulum preset (its spec has none)
    (["env.id=MountainCar-v0"], -110),  # env.id changed under the cartpole preset: the spec's value
    (["env.id=Acrobot-v1"], -100),
    (["env.id=MountainCar-v0", "run.threshold=-150"], -150),  # the command line wins
    (["run.threshold=null"], None),  # ... also when it removes the threshold
    (["env=pendulum", "env.id=MountainCarContinuous-v0"], 90),
    (["env.id=Pendulum-v1"], None),  # neither a preset for this id nor a spec value
    (["env=remote", "env.address=localhost:1"], None),
    (["env.id=no_such_module:Foo-v0"], None),  # ids that need an import: no lookup, no import
    (["env.id=NoSuchEnv-v0"], None),
])
def test_threshold_follows_the_env(overrides, threshold):
    cfg, obj = load(overrides)
    assert obj.run.threshold == threshold and cfg.run.threshold == threshold


def test_a_resumed_config_keeps_its_threshold():
    from omegaconf import OmegaConf

    saved, _ = load(["env.id=MountainCar-v0", "run.threshold=-130"])
    _, obj = load([], base=OmegaConf.create(OmegaConf.to_yaml(saved)))
    assert obj.run.threshold == -130
