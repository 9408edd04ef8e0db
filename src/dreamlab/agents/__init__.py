"""Agents by name. Each lives in its own folder and implements agents/base.Agent."""

from __future__ import annotations

import gymnasium as gym
import torch

from dreamlab.agents.base import Agent
from dreamlab.config.schema import Config


def make_agent(config: Config, obs_space: gym.spaces.Dict, action_space: gym.Space, device: torch.device) -> Agent:
    """The agent `config.agent.name` names, built as `Agent(config, obs_space, action_space, device)`."""
    name = config.agent.name
    if name == "iqn":
        from dreamlab.agents.iqn.agent import IQNAgent

        return IQNAgent(config, obs_space, action_space, device)
    if name == "dreamer":
        from dreamlab.agents.dreamer.agent import DreamerAgent

        return DreamerAgent(config, obs_space, action_space, device)
    if name == "sac":
        from dreamlab.agents.sac.agent import SACAgent

        return SACAgent(config, obs_space, action_space, device)
    if name == "ppo":
        from dreamlab.agents.ppo.agent import PPOAgent

        return PPOAgent(config, obs_space, action_space, device)
    raise ValueError(f"unknown agent {name!r}")
