"""What the world model sees and dreams: posterior reconstructions, then an open-loop prediction.

The first `context` steps of each replayed sequence are filtered through the posterior and decoded;
from the last posterior state the prior alone rolls forward under the replayed actions and its
states are decoded. Compared with the real frames this shows at a glance whether the model has
learned the scene and how far ahead its dreams stay true.
"""

from __future__ import annotations

import numpy as np
import torch

from dreamlab.agents.dreamer.actions import ActionSpace
from dreamlab.agents.dreamer.world_model import WorldModel


@torch.no_grad()
def open_loop(wm: WorldModel, batch: dict[str, np.ndarray], actions: ActionSpace, key: str, context: int,
              device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """batch: replay arrays [N, T, ...] with the image key `key`. Returns (truth, model) frames of that
    key, uint8 [N, T, H, W, C].

    Model frames 0..context-1 are posterior reconstructions, frames context..T-1 open-loop dreams.
    Episode starts inside the context reset the state as in training; the dream ignores later ones.
    """
    seq = {k: torch.as_tensor(np.swapaxes(v, 0, 1), device=device) for k, v in batch.items()}
    steps, rows = seq["is_first"].shape
    context = max(1, min(context, steps))
    is_first = seq["is_first"][:context].clone()
    is_first[0] = True
    inputs = actions.encode(actions.from_env(seq["action"]))
    embed = wm.encode({k: seq[k][:context] for k in wm.keys})
    carry = (*wm.rssm.initial(rows, device), torch.zeros_like(inputs[0]))
    deters, stochs, _, (deter, stoch, prev_action) = wm.rssm.observe(embed, inputs[:context], is_first, carry)
    dreamed_deters, dreamed_stochs = [deters], [stochs]
    for t in range(context, steps):
        deter = wm.rssm.core(deter, stoch, prev_action)
        stoch = wm.rssm.sample(wm.rssm.prior(deter))
        dreamed_deters.append(deter[None])
        dreamed_stochs.append(stoch[None])
        prev_action = inputs[t]
    images = wm.decode_images(torch.cat(dreamed_deters).float(), torch.cat(dreamed_stochs).float())[key]
    model = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return np.asarray(batch[key]), np.swapaxes(model.cpu().numpy(), 0, 1)
