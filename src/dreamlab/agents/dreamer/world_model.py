"""DreamerV3 world model: RSSM with a block-diagonal GRU and categorical latents, vector encoder and
decoder, reward and continue heads (DREAMERV3.md Part B sections 1-4).

Shapes: N = rows (batch x envs or B*T imagination starts), D = deter, G x K = stochastic groups x
classes. Every head reads the model state as (deter [.., D], stoch): stoch is a one-hot [.., G*K]
(straight-through where gradients flow) or class indices [.., G] (imagination, no gradient).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dreamlab import functional as fn
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

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor,
                carry: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """Filter a sequence. embed [T, B, E], action [T, B, A] (previous actions), is_first [T, B].

        Deter, stoch and the previous action are zeroed where is_first before the step.
        Returns deters [T, B, D], stochs [T, B, G*K], posterior logits [T, B, G, K], final carry.
        """
        deter, stoch, prev_action = carry
        deters, stochs, post_logits = [], [], []
        keep_all = (1.0 - is_first.float()).unsqueeze(-1)
        for t in range(embed.shape[0]):
            keep = keep_all[t]
            deter = self.core(deter * keep, stoch * keep, prev_action * keep)
            logits = self.posterior(deter, embed[t])
            stoch = self.sample(logits)
            deters.append(deter)
            stochs.append(stoch)
            post_logits.append(logits)
            prev_action = action[t]
        return torch.stack(deters), torch.stack(stochs), torch.stack(post_logits), (deter, stoch, prev_action)

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


class WorldModel(nn.Module):
    """Observations `state` (vector, symlog MLP) and/or `image` (uint8 [H, W, C], CNN), one embedding."""

    def __init__(self, obs_shapes: dict[str, tuple[int, ...]], action_dim: int, cfg) -> None:  # noqa: ANN001
        super().__init__()
        units, latent = cfg.units, (cfg.deter, cfg.groups, cfg.classes)
        self.keys = sorted(obs_shapes)
        # built in this order (encoders, RSSM, decoders, heads) so a seed gives the same weights as
        # before images were supported
        embed_dim = 0
        if "state" in obs_shapes:
            state_dim = obs_shapes["state"][0]
            self.encoder = norm_mlp(state_dim, units, cfg.mlp_layers)
            embed_dim += units
        if "image" in obs_shapes:
            size, _, channels = obs_shapes["image"]
            self.image_encoder = ImageEncoder(channels, size, cfg.cnn_depth)
            embed_dim += self.image_encoder.out_dim
        self.rssm = RSSM(action_dim, embed_dim, cfg.deter, cfg.hidden, cfg.groups, cfg.classes, cfg.blocks,
                         cfg.unimix, cfg.img_layers)
        if "state" in obs_shapes:
            self.decoder = FeatureHead(*latent, units, cfg.mlp_layers, state_dim, 1.0)
        if "image" in obs_shapes:
            self.image_decoder = ImageDecoder(*latent, units, channels, size, cfg.cnn_depth, cfg.blocks)
        self.reward_head = TwohotHead(FeatureMLP(*latent, units, 1), units, cfg.bins, outscale=0.0)
        self.continue_head = FeatureHead(*latent, units, 1, 1, 1.0)

    def encode(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The concatenated embedding of the CNN and MLP outputs [..., embed]."""
        parts = []
        if "image" in self.keys:
            parts.append(self.image_encoder(obs["image"]))
        if "state" in self.keys:
            parts.append(self.encoder(fn.symlog(obs["state"])))
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)
