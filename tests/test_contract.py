"""The agent contract (agents/base.py): every agent satisfies it, and its policy weights are tensors only."""

import numpy as np
import pytest
import torch

from dreamlab.agents import make_agent
from dreamlab.agents.base import Agent
from dreamlab.collect.base import policy_factory, spaces
from dreamlab.collect.interface import Actor
from dreamlab.config.load import load
from dreamlab.nets.optim import guarded_step

TINY = {
    "iqn": ["agent=iqn", "agent.hidden=[16]", "agent.cosines=8"],
    "sac": ["agent=sac", "env=pendulum", "agent.hidden=[16,16]"],
    "ppo": ["agent=ppo", "env.num_envs=2", "agent.n_steps=4", "agent.hidden=[16]"],
    "dreamer": ["agent=dreamer", "agent.deter=32", "agent.hidden=16", "agent.groups=4", "agent.classes=4",
                "agent.blocks=4", "agent.units=16", "agent.mlp_layers=1", "agent.ac_layers=1", "agent.bins=31"],
}


def build(name: str, overrides: tuple[str, ...] = ()):
    _, cfg = load(["threads=1", *TINY[name], *overrides])
    return make_agent(cfg, *spaces(cfg), torch.device("cpu")), cfg


def tensor_leaves(state, path="") -> list[str]:
    """Paths of the entries that are neither tensors nor dicts (of tensors, to any depth)."""
    if isinstance(state, dict):
        return [bad for key, value in state.items() for bad in tensor_leaves(value, f"{path}{key}/")]
    return [] if isinstance(state, torch.Tensor) else [f"{path.rstrip('/')} ({type(state).__name__})"]


@pytest.mark.parametrize("name", sorted(TINY))
def test_make_agent_returns_the_contract(name):
    agent, cfg = build(name)
    assert isinstance(agent, Agent) and isinstance(agent, Actor)
    assert agent.learns_from == ("rollout" if name == "ppo" else "replay")
    assert all(isinstance(getattr(agent, k), int) and getattr(agent, k) >= 1
               for k in ("batch_size", "batch_length", "learned_steps_per_window", "frame_stack"))
    assert isinstance(agent.env_steps, int) and agent.extra_updates() == 0  # no gate configured
    agent.env_steps = 1234  # the loop sets it in parallel modes; every agent takes it
    assert agent.env_steps == 1234
    obs_space, action_space = spaces(cfg)
    obs = {k: np.stack([space.sample()] * 2) for k, space in obs_space.items()}
    action, _ = agent.act({**obs, "is_first": np.ones(2, bool)}, None, explore=False)
    assert len(action) == 2 and action_space.contains(action[0])


PIXELS = ("env.pixels=true", "env.image_size=32", "agent.cnn=dreamer", "agent.cnn_depth=2")


@pytest.mark.parametrize("name, overrides", [("iqn", ()), ("sac", ()), ("ppo", ()), ("dreamer", ()),
                                             ("iqn", PIXELS), ("dreamer", (*PIXELS[:2], "agent.cnn_depth=2"))])
def test_policy_state_dict_holds_only_tensors(name, overrides):
    """Process mode shares it through shared memory and Ray mode through the object store."""
    agent, cfg = build(name, overrides)
    state = agent.policy_state_dict()
    assert state and tensor_leaves(state) == []
    copy = policy_factory(agent)(cfg, *spaces(cfg), torch.device("cpu"))  # what a collector builds
    copy.load_policy_state_dict(state)
    assert tensor_leaves(copy.policy_state_dict()) == []


@pytest.mark.parametrize("name", ["iqn", "sac", "ppo"])
def test_agents_without_pictures_make_none(name):
    agent, _ = build(name)
    assert agent.media({}) == {}


def test_guarded_step_measures_and_clips_each_group_and_skips_non_finite_ones():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([a, b], lr=1.0)
    loss = (a * torch.tensor([3.0, 4.0])).sum() + 0.5 * b.sum()
    step = guarded_step(loss, optimizer, {"a": [a], "b": [b]}, {"a": 1.0})
    assert step.stepped and step.norms == pytest.approx({"a": 5.0, "b": 0.5})  # norms before clipping
    torch.testing.assert_close(a.detach(), -torch.tensor([0.6, 0.8]), atol=1e-5, rtol=0)  # clipped to norm 1
    torch.testing.assert_close(b.detach(), torch.tensor([-0.5]))  # b has no limit
    before = a.detach().clone()
    assert guarded_step(a.sum() * float("nan"), optimizer, {"a": [a]}, 1.0) == (False, {})  # a non-finite loss
    hook = a.register_hook(lambda grad: torch.full_like(grad, float("nan")))  # a finite loss, a NaN gradient
    step = guarded_step(a.sum(), [optimizer], {"a": [a]})
    hook.remove()
    assert not step.stepped and np.isnan(step.norms["a"])
    assert torch.equal(a.detach(), before) and a.grad is None  # nothing stepped, gradients cleared
