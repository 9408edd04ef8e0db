"""One-line errors instead of tracebacks: exit 2 for what the user typed, exit 1 otherwise.

Each case runs the command line in a subprocess, as a user would, and checks the exit code, that
stderr is exactly one `dreamlab: error:` line naming the key (or the extra to install), and that no
run directory is left behind.
"""

import os
import subprocess
import sys
import time

import pytest
import torch

CLI = [sys.executable, "-m", "dreamlab.cli"]
# a CLI started with ray hidden, as on a machine without the `ray` extra
WITHOUT_RAY = [sys.executable, "-c",
               "import sys; sys.modules['ray'] = None; from dreamlab.cli import main; sys.exit(main(sys.argv[1:]))"]


def run_cli(args, command=CLI, env=None):
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, env=env)


def assert_one_line(result, code, *words):
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("dreamlab: error: ") and result.stderr.count("\n") == 1, result.stderr
    for word in words:
        assert word in result.stderr


def left_behind(run_dir):
    return list(run_dir.iterdir()) if run_dir.exists() else []


@pytest.mark.parametrize("override, words", [
    ("+env.kwargs.nonexistent=3", ["env.kwargs.nonexistent: CartPole-v1 does not take this argument"]),
    ("env.id=some_missing_module:Env-v0", ["env.id=some_missing_module:Env-v0", "'some_missing_module'"]),
])
def test_train_with_an_env_the_config_cannot_build(tiny, tmp_path, override, words):
    assert_one_line(run_cli(["train", "--quiet", *tiny, override]), 2, *words)
    assert not left_behind(tmp_path / "runs")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_train_on_cuda_without_cuda(tiny, tmp_path):
    assert_one_line(run_cli(["train", "--quiet", *tiny, "device=cuda"]), 2, "device=cuda", "device=cpu")
    assert not left_behind(tmp_path / "runs")


def test_ray_collection_without_ray_names_the_extra(tiny, tmp_path):
    result = run_cli(["train", "--quiet", *tiny, "collect.mode=ray", "collect.workers=1"], command=WITHOUT_RAY)
    assert_one_line(result, 2, "collect.mode=ray", "pip install -e '.[ray]'")
    assert not left_behind(tmp_path / "runs")


def test_eval_of_a_run_whose_env_module_is_not_importable(tmp_path):
    """The run's own recorded config names the env: not a usage error, so exit 1."""
    from omegaconf import OmegaConf

    from dreamlab.config.load import load

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    cfg_dict, _ = load(["env.id=some_missing_module:Env-v0", "threads=1"])
    OmegaConf.save(cfg_dict, run / "config.yaml")
    torch.save({"format": 1, "agent": {}}, run / "checkpoints" / "latest.pt")  # read before the env is built
    assert_one_line(run_cli(["eval", str(run)]), 1, "env.id=some_missing_module:Env-v0", "'some_missing_module'")


def test_serve_env_pixels_prints_no_sdl_noise():
    """SDL, unset, tries a display and prints "XDG_RUNTIME_DIR is invalid" at the first frame."""
    from dreamlab.envs.remote.client import RemoteEnv

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SDL_", "XDG_RUNTIME_DIR"))}
    server = subprocess.Popen([*CLI, "serve-env", "CartPole-v1", "--pixels", "--image-size", "16", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = server.stdout.readline()
        assert first.startswith("serving CartPole-v1 on "), server.stderr.read()
        client = RemoteEnv(first.split(" on ")[1].split()[0])
        client.reset(seed=0)
        client.step(0)  # frames rendered on the server
        client.close()
        time.sleep(0.5)
    finally:
        server.terminate()  # SDL's own SIGTERM handler is off: this stops it even mid-episode
        out, err = server.communicate(timeout=60)
    assert err == "" and out == ""
