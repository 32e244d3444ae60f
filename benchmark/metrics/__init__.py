"""Disentanglement metrics as functions of (source, representation, random state).

``kim_mnih`` (FactorVAE metric, with the thesis' weighted variant), ``higgins`` (beta-VAE metric),
``linear_r2`` (R² of a linear read-out of each factor) and ``evaluate`` (all of them, as one flat
dict). A *source* is a dataset path or open file (its stored evaluation sets) or a live oracle;
a *representation* maps a uint8 image batch (n, H, W, C) to latent means (n, D), numpy or torch.
Definitions, defaults and sources: ``docs/metrics.md``. Importing this package does not import
torch.
"""

from __future__ import annotations

from benchmark.metrics.encode import RepresentationError, Timings
from benchmark.metrics.evaluate import evaluate
from benchmark.metrics.higgins import HigginsResult, higgins
from benchmark.metrics.kim_mnih import KimMnihResult, WeightedKimMnih, kim_mnih
from benchmark.metrics.linear_r2 import LinearR2Result, linear_r2
from benchmark.metrics.presets import PRESETS, Preset, get_preset
from benchmark.metrics.sources import OracleSource, StoredSource, open_source

__all__ = [
    "PRESETS",
    "Preset",
    "get_preset",
    "evaluate",
    "kim_mnih",
    "higgins",
    "linear_r2",
    "LinearR2Result",
    "KimMnihResult",
    "WeightedKimMnih",
    "HigginsResult",
    "RepresentationError",
    "Timings",
    "StoredSource",
    "OracleSource",
    "open_source",
]
