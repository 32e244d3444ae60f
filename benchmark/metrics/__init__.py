"""Disentanglement metrics as functions of (source, representation, random state).

``kim_mnih`` (FactorVAE metric, with the thesis' weighted variant), ``higgins`` (beta-VAE metric),
``mig``, ``dci``, ``sap``, ``modularity_explicitness`` (Locatello et al. 2019's suite, on i.i.d.
samples that ``encode_samples`` encodes once for all four) and ``evaluate`` (all of them, as one
flat dict). A *source* is a dataset path or open file (its
stored evaluation sets) or a live oracle; a *representation* maps a uint8 image batch
(n, H, W, C) to latent means (n, D), numpy or torch. Definitions, defaults and sources:
``docs/metrics.md``. Importing this package does not import torch.
"""

from __future__ import annotations

from benchmark.metrics.dci import DCIResult, dci
from benchmark.metrics.encode import RepresentationError, Timings
from benchmark.metrics.evaluate import METRIC_KEYS, SCORE_KEYS, evaluate
from benchmark.metrics.higgins import HigginsResult, higgins
from benchmark.metrics.kim_mnih import KimMnihResult, WeightedKimMnih, kim_mnih
from benchmark.metrics.mig import MIGResult, mig
from benchmark.metrics.modularity import ModularityResult, modularity_explicitness
from benchmark.metrics.presets import PRESETS, Preset, get_preset
from benchmark.metrics.samples import EncodedSamples, encode_samples
from benchmark.metrics.sap import SAPResult, sap
from benchmark.metrics.sources import OracleSource, StoredSource, open_source

__all__ = [
    "PRESETS",
    "Preset",
    "get_preset",
    "evaluate",
    "SCORE_KEYS",
    "METRIC_KEYS",
    "kim_mnih",
    "higgins",
    "mig",
    "dci",
    "sap",
    "modularity_explicitness",
    "encode_samples",
    "EncodedSamples",
    "KimMnihResult",
    "WeightedKimMnih",
    "HigginsResult",
    "MIGResult",
    "DCIResult",
    "SAPResult",
    "ModularityResult",
    "RepresentationError",
    "Timings",
    "StoredSource",
    "OracleSource",
    "open_source",
]
