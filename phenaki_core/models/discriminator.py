"""A StyleGAN-like frame discriminator for C-ViViT's adversarial loss, trained from scratch.

Residual conv blocks with downsampling and LeakyReLU (StyleGAN2's layout, without its
equalized learning rate and minibatch statistics, which small data does not need).
Frames are judged one by one, so it serves images and every frame of a video alike.
"""
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class _ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1, stride=2)
        self.skip = nn.Conv2d(cin, cout, 1, stride=2, bias=False)

    def forward(self, x):
        y = F.leaky_relu(self.conv1(x), 0.2)
        y = F.leaky_relu(self.conv2(y), 0.2)
        return (y + self.skip(x)) / 2**0.5


class Discriminator(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, in_channels: int = 3, channels: int = 16, blocks: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1)]  # halve the resolution first: cost
        c = channels
        for _ in range(blocks):
            layers.append(_ResBlock(c, min(2 * c, 256)))
            c = min(2 * c, 256)
        self.features = nn.Sequential(*layers)
        self.to_logit = nn.Conv2d(c, 1, 3, padding=1)  # patch-wise real/fake logits

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, C, T, H, W) -> logits per frame and patch."""
        b, c, t, h, w = video.shape
        frames = video.transpose(1, 2).reshape(b * t, c, h, w)
        return self.to_logit(F.leaky_relu(self.features(frames), 0.2))
