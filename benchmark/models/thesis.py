"""The encoder and decoder of the thesis (section 3.4), after Miyoshi (2017).

Encoder: 4 x (4x4 conv, 32 channels, stride 2, ReLU), FC 256 ReLU, FC 256 ReLU, then two linear
heads of size D (mean and log-variance). Decoder: FC 256 ReLU, FC 512 ReLU (reshaped to 32 x 4 x 4),
3 x (4x4 transposed conv, 32 channels, stride 2, ReLU) and a fourth 4x4 transposed conv, stride 2,
to C channels of Bernoulli logits. Padding 1 halves (doubles) the side exactly: 64 -> 4 -> 64.
"""

from __future__ import annotations

import torch
from torch import nn

CONV_CHANNELS = 32
NUM_CONV = 4


def _check_side(image_shape: tuple[int, int, int]) -> int:
    c, h, w = image_shape
    factor = 2**NUM_CONV
    if h != w or h % factor:
        raise ValueError(
            f"the thesis network needs square images whose side is a multiple of {factor} "
            f"(64 x 64 in the thesis), got {h} x {w}"
        )
    return h // factor


class ThesisEncoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        c = image_shape[0]
        side = _check_side(image_shape)
        layers: list[nn.Module] = []
        for i in range(NUM_CONV):
            layers += [nn.Conv2d(c if i == 0 else CONV_CHANNELS, CONV_CHANNELS, 4, 2, 1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(CONV_CHANNELS * side * side, 256),
            nn.ReLU(),
            nn.Linear(256, 256),
            nn.ReLU(),
        )
        self.mu = nn.Linear(256, latent_dim)
        self.logvar = nn.Linear(256, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x))
        return self.mu(h), self.logvar(h)


class ThesisDecoder(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int) -> None:
        super().__init__()
        c = image_shape[0]
        self.side = _check_side(image_shape)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 256),
            nn.ReLU(),
            nn.Linear(256, CONV_CHANNELS * self.side * self.side),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for i in range(NUM_CONV):
            last = i == NUM_CONV - 1
            layers.append(nn.ConvTranspose2d(CONV_CHANNELS, c if last else CONV_CHANNELS, 4, 2, 1))
            if not last:
                layers.append(nn.ReLU())
        self.deconvs = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, CONV_CHANNELS, self.side, self.side)
        return self.deconvs(h)
