"""Observation encoders of the model-free agents: an observation dict -> one feature vector.

- vector keys (float32 [d]: `state`, or a dict env's keys such as DMC's `position`, `velocity`):
  concatenated in name order, as they are.
- `image` (uint8 [H, W, C * frame_stack], converted to float on the device), optionally with
  vector keys: a CNN, either the Nature-DQN one (8x8/4, 4x4/2, 3x3/1 convolutions, ReLU, then
  Linear 512) for 84x84 frames, or DreamerV3's encoder (nets/conv.py), with the vectors appended
  to its output.
"""

from __future__ import annotations

import gymnasium as gym
import torch
from torch import nn

from dreamlab.nets.conv import ImageEncoder


class NatureCNN(nn.Module):
    MIN_SIZE = 36  # 8x8/4, 4x4/2, 3x3/1 shrink 36 to 1

    def __init__(self, channels: int, size: int, features: int = 512):
        super().__init__()
        if size < self.MIN_SIZE:
            raise ValueError(f"image size {size}: agent.cnn=nature needs >= {self.MIN_SIZE}; "
                             "use agent.cnn=dreamer for small frames")
        self.convs = nn.Sequential(nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
                                   nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                                   nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, size, size)).shape[1]
        self.linear = nn.Sequential(nn.Linear(flat, features), nn.ReLU())
        self.out_dim = features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 [N, H, W, C] -> [N, features]."""
        x = image.permute(0, 3, 1, 2).float() / 255.0
        return self.linear(self.convs(x))


class ObservationEncoder(nn.Module):
    def __init__(self, obs_space: gym.spaces.Dict, cnn: str = "nature", frame_stack: int = 1, cnn_depth: int = 16):
        super().__init__()
        keys = set(obs_space.spaces)
        shapes = {k: tuple(obs_space[k].shape or ()) for k in keys}
        images = sorted(k for k in keys if len(shapes[k]) == 3)
        if images and images != ["image"]:
            raise ValueError(f"observation keys {images}: model-free agents read one image, named 'image'")
        self.vector_keys = sorted(keys - {"image"})
        if not keys:
            raise ValueError("the observation space has no keys")
        self.state_dim = sum(int(shapes[k][0]) for k in self.vector_keys)
        self.cnn: nn.Module | None = None
        self.stacker = FrameStacker(frame_stack)
        self.out_dim = self.state_dim
        if "image" in keys:
            size, width, channels = shapes["image"]
            if size != width and cnn == "nature":
                raise ValueError(f"image observations must be square for agent.cnn=nature, got {size}x{width}")
            channels *= frame_stack
            if cnn == "nature":
                self.cnn = NatureCNN(channels, size)
            elif cnn == "dreamer":
                self.cnn = ImageEncoder(channels, (size, width), cnn_depth)
            else:
                raise ValueError(f"unknown image encoder {cnn!r}: nature or dreamer")
            self.out_dim += self.cnn.out_dim

    def acting_inputs(self, obs: dict, stack: torch.Tensor | None,
                      device: torch.device) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Collector observations (numpy [E, ...] plus `is_first`) -> encoder inputs and the new frame stack."""
        inputs = {k: torch.as_tensor(obs[k], device=device) for k in self.vector_keys}
        if self.cnn is not None:
            image = torch.as_tensor(obs["image"], device=device)
            if self.stacker.k > 1:
                stack = self.stacker(image, torch.as_tensor(obs["is_first"], device=device), stack)
                image = stack
            inputs["image"] = image
        return inputs, stack

    def batch_inputs(self, batch: dict, step: int, device: torch.device) -> dict[str, torch.Tensor]:
        """Step `step` of replay windows [B, T, ...] as encoder inputs [B, ...]."""
        keys = self.vector_keys + (["image"] if self.cnn is not None else [])
        return {k: torch.from_numpy(batch[k][:, step]).to(device) for k in keys}

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """[image features, vector keys in name order] concatenated (at least one part: the space has keys)."""
        parts = [] if self.cnn is None else [self.cnn(obs["image"])]
        parts += [obs[k].float() for k in self.vector_keys]
        return parts[0] if len(parts) == 1 else torch.cat(parts, -1)


class FrameStacker:
    """The last `k` frames of each env, channels concatenated oldest first, for acting.

    At an episode start every slot holds the first frame, as the replay does at sample time.
    """

    def __init__(self, k: int):
        self.k = k

    def __call__(self, image: torch.Tensor, is_first: torch.Tensor, stack: torch.Tensor | None) -> torch.Tensor:
        """image [E, H, W, C], is_first [E] (bool), previous stack [E, H, W, C*k] or None -> new stack."""
        fresh = image.repeat(1, 1, 1, self.k)
        if stack is None or stack.shape[0] != image.shape[0]:
            return fresh
        shifted = torch.cat([stack[..., image.shape[-1]:], image], -1)
        return torch.where(is_first.view(-1, 1, 1, 1), fresh, shifted)
