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
#: Input pixels per pass through the encoder's convolutions when no gradient is recorded:
#: 128 images of 64 x 64 (see ``ThesisEncoder.convolve``).
INFERENCE_SLICE_PIXELS = 128 * 64 * 64


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
        h = self.fc(self.convolve(x))
        return self.mu(h), self.logvar(h)

    def convolve(self, x: torch.Tensor) -> torch.Tensor:
        """The convolutions; when scoring on a CPU (no gradient recorded), over slices of the batch.

        Scoring encodes 512 images per call. At 64 x 64 the first convolution's output is then a
        64 MiB buffer: above the largest block glibc's heap serves (32 MiB,
        ``benchmark.allocator``) and far beyond the caches, so each call paid fresh pages and
        trips to memory. In slices of 128 images (16 MiB) a quick evaluation took 1.34x less
        time on the 2-core VM (docs/performance.md, "Encoding in slices"). A convolution
        computes each image alone, so the slices give the same bits as the whole batch
        (tested), and the fully connected layers still see all the rows at once, as before: the
        latents do not change. A GPU keeps the whole batch: it wants large launches, and its
        convolution algorithms may depend on the batch size."""
        step = max(1, INFERENCE_SLICE_PIXELS // (x.shape[-2] * x.shape[-1]))
        if torch.is_grad_enabled() or x.device.type != "cpu" or len(x) <= step:
            return self.convs(x)
        return torch.cat([self.convs(part) for part in x.split(step)])


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
