"""DreamerV3 world model: RSSM with a block-diagonal GRU and categorical latents, vector encoder and
decoder, reward and continue heads (docs/dreamerv3.md: World model).

Shapes: N = rows (batch x envs or B*T imagination starts), D = deter, G x K = stochastic groups x
classes. Every head reads the model state as (deter [.., D], stoch): stoch is a one-hot [.., G*K]
(straight-through where gradients flow) or class indices [.., G] (imagination, no gradient).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dreamlab import functional as fn
from dreamlab.config.load import ConfigError
from dreamlab.nets.conv import ImageDecoder, ImageEncoder
from dreamlab.nets.heads import TwohotHead
from dreamlab.nets.layers import BlockLinear, FeatureHead, FeatureLayer, FeatureMLP, RMSNorm, dense, head, norm_mlp


class RSSM(nn.Module):
    def __init__(self, action_dim: int, embed_dim: int, deter: int, hidden: int, groups: int, classes: int,
                 blocks: int, unimix: float, img_layers: int = 2):
        super().__init__()
        self.deter, self.groups, self.classes, self.blocks, self.unimix = deter, groups, classes, blocks, unimix
        stoch = groups * classes
        self.in_deter = dense(deter, hidden)
        self.in_stoch = FeatureLayer(0, groups, classes, hidden)
        self.in_action = dense(action_dim, hidden)
        block_in = deter // blocks + 3 * hidden
        self.gru_hidden = BlockLinear(blocks * block_in, deter, blocks, bias=False)
        self.gru_norm = RMSNorm(deter)
        self.gru_gates = BlockLinear(deter, 3 * deter, blocks)
        self.prior_net = nn.Sequential(*[dense(hidden if i else deter, hidden) for i in range(img_layers)],
                                       head(hidden, stoch, 1.0))
        self.posterior_net = nn.Sequential(dense(deter + embed_dim, hidden), head(hidden, stoch, 1.0))

    def initial(self, rows: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero deter [N, D] and zero stoch [N, G*K] (the official initial carry)."""
        return (torch.zeros(rows, self.deter, device=device),
                torch.zeros(rows, self.groups * self.classes, device=device))

    def core(self, deter: torch.Tensor, stoch: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """One block-GRU step: (h, z, a) -> new h [N, D]. Update gate biased toward keeping h.

        stoch is a one-hot [N, G*K] (float) or class indices [N, G] (long).
        """
        # Scale actions into the unit box (discrete one-hots are unchanged).
        action = action / torch.clamp(action.abs(), min=1.0).detach()
        shared = torch.cat([self.in_deter(deter), self.in_stoch(None, stoch), self.in_action(action)], -1)
        rows = deter.shape[0]
        per_block = torch.cat([deter.view(rows, self.blocks, -1),
                               shared.unsqueeze(1).expand(-1, self.blocks, -1)], -1).view(rows, -1)
        x = F.silu(self.gru_norm(self.gru_hidden(per_block)))
        gates = self.gru_gates(x).view(rows, self.blocks, 3, -1)
        reset, cand, update = gates.unbind(2)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1.0)
        return (update * cand + (1 - update) * deter.view(rows, self.blocks, -1)).view(rows, -1)

    def grouped(self, raw: torch.Tensor) -> torch.Tensor:
        """[..., G*K] -> [..., G, K]."""
        return raw.view(*raw.shape[:-1], self.groups, self.classes)

    def logits(self, raw: torch.Tensor) -> torch.Tensor:
        """Unimixed logits [..., G, K]."""
        return fn.unimix_logits(self.grouped(raw), self.unimix)

    def prior(self, deter: torch.Tensor) -> torch.Tensor:
        return self.logits(self.prior_net(deter))

    def posterior(self, deter: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return self.logits(self.posterior_net(torch.cat([deter, embed], -1)))

    @staticmethod
    def sample(logits: torch.Tensor) -> torch.Tensor:
        """Straight-through one-hot sample [..., G*K] of unimixed logits [..., G, K]."""
        probs = torch.softmax(logits, -1)
        onehot = F.one_hot(fn.sample_probs(probs.detach()), probs.shape[-1]).to(probs.dtype)
        if not torch.is_grad_enabled():  # acting and imagination: the exact one-hot, no straight-through
            return onehot.flatten(-2)
        return (onehot + probs - probs.detach()).flatten(-2)

    def observe_step(self, deter: torch.Tensor, stoch: torch.Tensor, prev_action: torch.Tensor, keep: torch.Tensor,
                     embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One filtering step: the carry zeroed where keep [N, 1] is 0, the GRU, the posterior.
        Returns deter [N, D], the straight-through stoch sample [N, G*K] and the posterior logits [N, G, K]."""
        deter = self.core(deter * keep, stoch * keep, prev_action * keep)
        logits = self.posterior(deter, embed)
        return deter, self.sample(logits), logits

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                carry: tuple[torch.Tensor, torch.Tensor, torch.Tensor], step: Callable[..., Any] | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Filter a sequence. embed [T, B, E], action [T, B, A] (previous actions), is_first [T, B].

        Deter, stoch and the previous action are zeroed where is_first before the step. `step` replaces
        observe_step (the agent passes its compiled version with agent.compile_scope=steps).
        Returns deters [T, B, D], stochs [T, B, G*K], posterior logits [T, B, G, K], final carry.
        """
        step = step or self.observe_step
        deter, stoch, prev_action = carry
        deters, stochs, post_logits = [], [], []
        keep_all = (1.0 - is_first.float()).unsqueeze(-1)
        for t in range(embed.shape[0]):
            deter, stoch, logits = step(deter, stoch, prev_action, keep_all[t], embed[t])
            deters.append(deter)
            stochs.append(stoch)
            post_logits.append(logits)
            prev_action = action[t]
        return torch.stack(deters), torch.stack(stochs), torch.stack(post_logits), (deter, stoch, prev_action)

    def forward(self, deter: torch.Tensor, stoch: torch.Tensor,
                action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One differentiable prior step: (h, one-hot z, a) -> (h', straight-through one-hot z' [N, G*K])."""
        deter = self.core(deter, stoch, action)
        return deter, self.sample(self.prior(deter).float())

    @torch.no_grad()
    def imagine_step(self, deter: torch.Tensor, stoch_index: torch.Tensor,
                     action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One prior step on class indices: (h, z index, a) -> (h', z' index)."""
        deter = self.core(deter, stoch_index, action)
        # sampled from the mixed probabilities: no log and softmax again
        return deter, fn.sample_probs(fn.unimix_probs(self.grouped(self.prior_net(deter)), self.unimix))


def categorical_kl(post_logits: torch.Tensor, prior_logits: torch.Tensor) -> torch.Tensor:
    """KL[post || prior] of [..., G, K] categoricals, summed over the G groups -> [...]."""
    post_log = torch.log_softmax(post_logits, -1)
    prior_log = torch.log_softmax(prior_logits, -1)
    return (post_log.exp() * (post_log - prior_log)).sum((-2, -1))


METRIC_KEYS = ("total", "reward", "continue", "kl")  # wm/loss_<key> and surprise names the model's own losses use


def select_keys(obs_space: gym.spaces.Dict, mlp_keys: str,
                cnn_keys: str) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
    """The observation keys DreamerV3 encodes and decodes: vector keys (float [d]) whose name fully
    matches `mlp_keys`, image keys (uint8 [H, W, C]) whose name fully matches `cnn_keys`.

    Returns ({vector key: dim}, {image key: (H, W, C)}), each sorted by name. A matched key of
    another kind, images of different sizes, or no key at all is a one-line ValueError.
    """
    for name, pattern in (("agent.mlp_keys", mlp_keys), ("agent.cnn_keys", cnn_keys)):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{name}={pattern!r}: not a regular expression ({exc})") from None
    vectors: dict[str, int] = {}
    images: dict[str, tuple[int, ...]] = {}
    for key in sorted(obs_space.spaces):
        if key in METRIC_KEYS and (re.fullmatch(mlp_keys, key) or re.fullmatch(cnn_keys, key)):
            raise ConfigError(f"observation key {key!r}: its loss would be logged as wm/loss_{key}, a name the world "
                              "model's own losses use; rename the key or leave it out of agent.mlp_keys/cnn_keys")
        space = obs_space[key]
        shape = tuple(space.shape) if isinstance(space, gym.spaces.Box) else ()  # (): neither kind
        is_image = space.dtype == np.uint8 and len(shape) == 3
        is_vector = not is_image and len(shape) == 1
        if is_image and re.fullmatch(cnn_keys, key):
            images[key] = tuple(int(n) for n in shape)
        elif is_vector and re.fullmatch(mlp_keys, key):
            vectors[key] = int(shape[0])
        elif not (is_image or is_vector) and (re.fullmatch(mlp_keys, key) or re.fullmatch(cnn_keys, key)):
            raise ConfigError(f"dreamer cannot read observation key {key!r} ({space}): expected a float vector [d] "
                             "or a uint8 image [H, W, C]")
    if len({shape[:2] for shape in images.values()}) > 1:
        sizes = ", ".join(f"{k} {h}x{w}" for k, (h, w, _) in images.items())
        raise ConfigError(f"dreamer's image keys must share one height and width (stacked on channels): {sizes}")
    if not vectors and not images:
        raise ConfigError(f"no observation key matches agent.mlp_keys={mlp_keys!r} or agent.cnn_keys={cnn_keys!r} "
                         f"among {sorted(obs_space.spaces)}")
    return vectors, images


class WorldModel(nn.Module):
    """Vector keys (symlog'd, concatenated in name order, one MLP) and image keys (stacked on
    channels, one CNN) encoded into one embedding; decoded per key by one vector head and one image
    decoder whose outputs are split by key."""

    def __init__(self, vectors: dict[str, int], images: dict[str, tuple[int, ...]], action_dim: int,
                 cfg) -> None:  # noqa: ANN001
        super().__init__()
        units, latent = cfg.units, (cfg.deter, cfg.groups, cfg.classes)
        self.vector_dims, self.image_channels = dict(vectors), {k: shape[2] for k, shape in images.items()}
        self.keys = sorted([*vectors, *images])
        vector_dim, channels = sum(vectors.values()), sum(self.image_channels.values())
        height, width, _ = next(iter(images.values())) if images else (0, 0, 0)
        image_hw = (height, width)
        # built in this order (encoders, RSSM, decoders, heads) so a seed gives the same weights as
        # before multi-key observations were supported
        embed_dim = 0
        if vectors:
            self.encoder = norm_mlp(vector_dim, units, cfg.mlp_layers)
            embed_dim += units
        if images:
            self.image_encoder = ImageEncoder(channels, image_hw, cfg.cnn_depth, cfg.cnn_sampling)
            embed_dim += self.image_encoder.out_dim
        self.rssm = RSSM(action_dim, embed_dim, cfg.deter, cfg.hidden, cfg.groups, cfg.classes, cfg.blocks,
                         cfg.unimix, cfg.img_layers)
        if vectors:
            self.decoder = FeatureHead(*latent, units, cfg.mlp_layers, vector_dim, 1.0)
        if images:
            self.image_decoder = ImageDecoder(*latent, units, channels, image_hw, cfg.cnn_depth, cfg.blocks,
                                              cfg.cnn_sampling)
        self.reward_head = TwohotHead(FeatureMLP(*latent, units, 1), units, cfg.bins, outscale=0.0)
        self.continue_head = FeatureHead(*latent, units, 1, 1, 1.0)

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The concatenated embedding of the CNN and MLP outputs [..., embed]."""
        parts = []
        if self.image_channels:
            parts.append(self.image_encoder(torch.cat([obs[k] for k in self.image_channels], -1)))
        if self.vector_dims:
            parts.append(self.encoder(fn.symlog(torch.cat([obs[k].float() for k in self.vector_dims], -1))))
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)

    def decode_vectors(self, deter: torch.Tensor, stoch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Symlog-space predictions of each vector key {key: [..., d]}."""
        if not self.vector_dims:
            return {}
        out = self.decoder(deter, stoch).float()
        return dict(zip(self.vector_dims, out.split(list(self.vector_dims.values()), -1), strict=True))

    def decode_images(self, deter: torch.Tensor, stoch: torch.Tensor) -> dict[str, torch.Tensor]:
        """Images in [0, 1] of each image key {key: [..., H, W, C]}."""
        if not self.image_channels:
            return {}
        out = self.image_decoder(deter, stoch).float()
        return dict(zip(self.image_channels, out.split(list(self.image_channels.values()), -1), strict=True))
