"""Encoding for the metrics: how the encoder slices its work changes its speed, never the latents
(so never the scores), and many models encode as each one alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import build_small

from benchmark.data import load_training_set
from benchmark.encode import encode_all, make_represent
from benchmark.models import build_model, thesis
from benchmark.models.registry import BUNDLED

CPU = torch.device("cpu")
N_IMAGES = 517  # one full 512-image model call and a short one


@pytest.fixture(scope="module")
def image_sets(dataset_k5, tmp_path_factory) -> list[np.ndarray]:
    """Grey images (K=5) and colour ones (K=6: hue varies), 517 of each."""
    colour = build_small(tmp_path_factory.mktemp("rgb"), 6, n=N_IMAGES)
    return [load_training_set(p)[0][:N_IMAGES] for p in (dataset_k5, colour)]


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_sliced_convolutions_give_round_1s_latents_bit_for_bit(name, image_sets, monkeypatch):
    for images in image_sets:
        model = build_model(name, (images.shape[-1], 64, 64), 7, seed=3, check=False)
        sliced = encode_all([model], images, CPU)[0]
        with monkeypatch.context() as m:  # round 1: convolutions over each whole chunk
            m.setattr(thesis, "INFERENCE_SLICE_PIXELS", 10**12)
            whole = encode_all([model], images, CPU)[0]
        with monkeypatch.context() as m:  # an awkward slice: 37 images
            m.setattr(thesis, "INFERENCE_SLICE_PIXELS", 37 * 64 * 64)
            odd = encode_all([model], images, CPU)[0]
        assert sliced.shape == (N_IMAGES, 7)
        assert np.array_equal(sliced, whole) and np.array_equal(odd, whole), name


def test_training_passes_are_not_sliced(image_sets):
    """With gradients recorded the convolutions see the whole batch (one graph, as before)."""
    model = build_model("vae", (1, 64, 64), 5, seed=0)
    x = torch.from_numpy(image_sets[0][:300]).permute(0, 3, 1, 2).float() / 255
    calls = []
    model.encoder.convs.register_forward_hook(lambda _m, inputs, _o: calls.append(len(inputs[0])))
    model.encode(x)
    with torch.no_grad():
        model.encode(x)
    assert calls == [300, 128, 128, 44]


def test_many_models_encode_as_each_alone(image_sets):
    images = image_sets[0][:300]
    models = [build_model("betavae", (1, 64, 64), d, seed=s) for s, d in [(0, 5), (1, 10)]]
    together = encode_all(models, images, CPU)
    for model, z in zip(models, together):
        assert z.shape == (300, model.latent_dim)
        assert np.array_equal(z, make_represent(model, CPU)(images))
