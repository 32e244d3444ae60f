"""Time to score one representation, split into reading (or rendering), encoding and arithmetic.

    PYTHONPATH=. python benchmarks/bench_metrics.py --file data/k5_full.h5 --preset full
    PYTHONPATH=. python benchmarks/bench_metrics.py --factors 5 --preset quick       # live oracle
    PYTHONPATH=. python benchmarks/bench_metrics.py --file F --metrics mig,dci,sap,modularity --dlib

Every metric of one encoder: Kim–Mnih and Higgins on their structured sets, then MIG, DCI, SAP
and modularity/explicitness on one shared encoding of the i.i.d. sample sets; one line per metric
with its time. ``--dlib`` also times disentanglement_lib 1.5 (if installed) on the same encoder
and sizes, twice: its public ``compute_*`` functions as its users run them (each draws, renders
and encodes its own samples through ``spritegen.adapters.GroundTruthAdapter``, 16 images per
call as its default), and its arithmetic alone on our encoded samples; ratios are printed.

Representations (cheap on purpose, so that the split shows the metric's own overhead):
``projection`` -- a fixed random linear map of the pixels to D=10 (numpy, float32);
``conv`` -- a small torch CNN with fixed random weights (two 4x4 stride-2 convs, ReLU, linear to
D=10), closer to the cost of a real encoder. Prints one line per metric and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from benchmark.metrics.presets import PRESET_NAMES


def projection_representation(shape: tuple[int, int, int], dim: int = 10):
    w = np.random.default_rng(0).normal(size=(int(np.prod(shape)), dim)).astype(np.float32)
    w /= np.sqrt(w.shape[0]) * 255.0

    def represent(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float32) @ w

    return represent


def conv_representation(shape: tuple[int, int, int], dim: int = 10):
    import torch

    g = torch.Generator().manual_seed(0)
    h, w, c = shape
    net = torch.nn.Sequential(
        torch.nn.Conv2d(c, 16, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 4, 2, 1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * (h // 4) * (w // 4), dim),
    )
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    net.eval()

    def represent(images: np.ndarray):
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
        with torch.no_grad():
            return net(x)

    return represent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="dataset file with stored evaluation sets")
    where.add_argument("--factors", type=int, help="live 2D oracle with this many factors")
    parser.add_argument("--preset", default="full", choices=PRESET_NAMES)
    parser.add_argument(
        "--metrics", default=None, help="comma-separated subset (default: every metric)"
    )
    parser.add_argument("--dci-model", default="gbt", choices=["gbt", "forest"])
    parser.add_argument("--dlib", action="store_true", help="time disentanglement_lib too")
    parser.add_argument("--represent", default="projection", choices=["projection", "conv"])
    parser.add_argument("--encode-batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from benchmark.metrics import evaluate

    if args.file:
        import h5py

        source = args.file
        with h5py.File(args.file, "r") as f:
            shape = tuple(f["images"].shape[1:])
    else:
        from spritegen.oracle import Oracle
        from spritegen.spec import default_spec

        source = Oracle.from_spec(default_spec(args.factors))
        shape = tuple(source.observation_shape)
    make = projection_representation if args.represent == "projection" else conv_representation
    represent = make(shape)

    t0 = time.perf_counter()
    result = evaluate(
        source,
        represent,
        args.seed,
        args.preset,
        encode_batch_size=args.encode_batch_size,
        progress=True,
        dci_model=args.dci_model,
        metrics=args.metrics.split(",") if args.metrics else None,
    )
    wall = time.perf_counter() - t0
    d = result["details"]
    p = d["preset"]
    images = {
        "kim_mnih": p["num_variance"] + p["batch_size"] * (p["num_train"] + p["num_eval"]),
        "higgins": 2 * p["batch_size"] * (p["num_train"] + p["num_eval"]),
        "samples": p["num_samples_train"] + p["num_samples_eval"],
    }
    images = {k: v for k, v in images.items() if k in result["times"]}
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}")
    print(
        f"source: {'file ' + args.file if args.file else f'live 2D oracle, K={args.factors}'}; "
        f"representation: {args.represent}; preset {p['name']} {p}"
    )
    for name in ("kim_mnih", "higgins"):
        if name not in d:
            continue
        t = d[name]["timings"]
        total = t["read_s"] + t["encode_s"] + t["metric_s"]
        print(
            f"{name:9s} score {d[name]['score']:.4f}  images {images[name]:>9,d}  "
            f"read {t['read_s']:7.2f} s  encode {t['encode_s']:7.2f} s  "
            f"metric {t['metric_s']:6.3f} s  total {total:7.2f} s"
        )
    times = result["times"]
    if "samples" in times:
        print(
            f"samples   {images['samples']:,d} i.i.d. images read and encoded once: "
            f"{times['samples']:.2f} s"
        )
    for name in ("mig", "dci", "sap", "modularity"):
        if name in times:
            keys = {
                "mig": ("mig",),
                "dci": ("dci_disentanglement", "dci_completeness", "dci_informativeness"),
                "sap": ("sap",),
                "modularity": ("modularity", "explicitness"),
            }[name]
            scores = ", ".join(f"{k} {result[k]:.4f}" for k in keys)
            print(f"{name:9s} metric {times[name]:8.2f} s  ({scores})")
    print(
        f"wall {wall:.1f} s for {sum(images.values()):,d} images "
        f"({sum(images.values()) / wall:,.0f} images/s)"
    )
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "details"} | {"wall_s": wall, "images": images}
        )
    )
    if args.dlib:
        time_dlib(args, source, represent, p, result)


def time_dlib(args, source, represent, p: dict, result: dict) -> None:
    """disentanglement_lib 1.5 on the same encoder and sizes (see the module docstring)."""
    import sys
    import types

    sys.modules.setdefault("gin.tf", types.ModuleType("gin.tf"))
    import gin
    from disentanglement_lib.evaluation.metrics import dci, mig, sap_score, utils
    from disentanglement_lib.evaluation.metrics import modularity_explicitness as mod

    from benchmark.metrics import encode_samples
    from benchmark.metrics.samples import discretize_factors
    from spritegen.adapters import GroundTruthAdapter
    from spritegen.oracle import Oracle

    gin.bind_parameter("discretizer.discretizer_fn", utils._histogram_discretize)
    gin.bind_parameter("discretizer.num_bins", 20)
    oracle = Oracle.from_file(source) if args.file else source
    data = GroundTruthAdapter(oracle, bins=20, within_bin="uniform")

    def rep(x):
        return np.asarray(represent(np.rint(x * 255).astype(np.uint8)), dtype=np.float64)

    n_tr, n_te = p["num_samples_train"], p["num_samples_eval"]
    rs = np.random.RandomState(args.seed)
    public = {
        "mig": lambda: mig.compute_mig(data, rep, rs, num_train=n_tr),
        "dci": lambda: dci.compute_dci(data, rep, rs, num_train=n_tr, num_test=n_te),
        "sap": lambda: sap_score.compute_sap(
            data, rep, rs, num_train=n_tr, num_test=n_te, continuous_factors=False
        ),
        "modularity": lambda: mod.compute_modularity_explicitness(
            data, rep, rs, num_train=n_tr, num_test=n_te
        ),
    }
    s = encode_samples(source, represent, args.seed, num_train=n_tr, num_eval=n_te)
    y_tr, y_te, _ = discretize_factors(s.y_train, s.y_eval)
    mus, mus_te, ys, ys_te = s.z_train.T, s.z_eval.T, y_tr.T, y_te.T

    def modularity_arithmetic():
        mi = utils.discrete_mutual_info(utils.make_discretizer(mus), ys)
        mod.modularity(mi)
        norm, mean, std = utils.normalize_data(mus)
        norm_te, _, _ = utils.normalize_data(mus_te, mean, std)
        for k in range(ys.shape[0]):
            mod.explicitness_per_factor(norm, ys[k], norm_te, ys_te[k])

    arithmetic = {
        "mig": lambda: mig._compute_mig(mus, ys),
        "dci": lambda: dci._compute_dci(mus, ys, mus_te, ys_te),
        "sap": lambda: sap_score._compute_sap(mus, ys, mus_te, ys_te, False),
        "modularity": modularity_arithmetic,
    }
    ours_total = result["times"].get("samples", 0.0)
    dlib_total = 0.0
    for name in ("mig", "dci", "sap", "modularity"):
        if name not in result["times"]:
            continue
        if name == "dci" and args.dci_model != "gbt":
            print("dlib dci: skipped (ours used --dci-model forest; the reference is gbt)")
            continue
        t0 = time.perf_counter()
        public[name]()
        t_public = time.perf_counter() - t0
        t0 = time.perf_counter()
        arithmetic[name]()
        t_arith = time.perf_counter() - t0
        ours = result["times"][name]
        ours_total += ours
        dlib_total += t_public
        print(
            f"dlib {name:10s} public {t_public:8.2f} s  arithmetic only {t_arith:8.2f} s  "
            f"ours {ours:8.2f} s  (arithmetic ratio dlib/ours {t_arith / max(ours, 1e-9):.2f})"
        )
    print(
        f"total: disentanglement_lib {dlib_total:.1f} s, ours {ours_total:.1f} s including the "
        f"shared encoding (ratio {dlib_total / max(ours_total, 1e-9):.2f})"
    )


if __name__ == "__main__":
    main()
