# Fresh machine: `make demo` or `make test`. Both create .venv if needed, install torch==2.13.0 first
# (the local CPU build; any other torch pulls a multi-GB CUDA build), then the project with every extra
# (mlflow and ray add about a minute, dmc, mujoco, atari and crafter a few seconds; their tests skip where they
# are not installed).
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean-venv

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[dev,box2d,mlflow,ray,dmc,mujoco,atari,crafter]'  # extras too, so their tests run in CI
	touch $(STAMP)

# The flagship: DreamerV3 on CartPole-v1 from state until an evaluation reaches 475 (a median of 7.5k env
# steps, about 9 minutes on 2 CPU cores; docs/benchmarks.md). `dreamlab train experiment=demo_iqn` is the
# minute-long model-free demo.
demo: $(STAMP)
	$(VENV)/bin/dreamlab train experiment=dreamer_cartpole run.name=demo run.stop_when=475 \
		run.hypothesis="DreamerV3 solves CartPole-v1 (eval >= 475) within 50k env steps on a CPU" \
		run.expect="eval/return_mean up"

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/dreamlab
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src/dreamlab

clean-venv:
	rm -rf $(VENV)
