"""Sweep specs: the thesis' grids expand as the thesis says; bad specs fail with one clear line."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from train_fixtures import make_tiny_dataset

from benchmark.datasets.testing import write_dsprites_npz
from benchmark.sweep import SweepPlan, load_sweep
from benchmark.sweep.spec import copy_text
from spritegen.errors import SpecError
from spritegen.executors import LocalExecutor, make_executor

ROOT = Path(__file__).resolve().parents[1]


def expand(plan: SweepPlan) -> tuple:
    return plan.points, plan.layout


SPECS = ROOT / "specs"

GOOD = """
name: t
datasets:
  a: {factors: 2, n: 100}
  b: {factors: 3, n: 100}
set: {model: betavae, latent_dim: 4, epochs: 1}
zip: {data: [a, b]}
grid: {beta: [1, 4], seed: [0]}
report: {x: factors}
"""


def test_experiment1_is_the_thesis_grid() -> None:
    points, layout = expand(load_sweep(SPECS / "experiment1.yaml"))
    assert len(points) == 4 * 4 * 3
    got = {(p.params["latent_dim"], p.params["beta"], p.params["seed"]) for p in points}
    assert got == {(d, b, s) for d in (5, 10, 15, 20) for b in (1, 2, 4, 8) for s in (0, 1, 2)}
    assert {p.factors for p in points} == {5}
    assert {p.params["epochs"] for p in points} == {30}
    assert {ep.x for ep in layout["experiment1"]} == {5, 10, 15, 20}


def test_experiment2_is_the_thesis_grid_with_epochs_by_k() -> None:
    plan = load_sweep(SPECS / "experiment2.yaml")
    points, layout, spec = plan.points, plan.layout, plan.spec
    assert len(points) == 7 * 4 * 3
    epochs_by_k = {1: 10, 2: 10, 3: 20, 4: 30, 5: 30, 6: 60, 7: 60}
    for p in points:
        assert p.params["latent_dim"] == 20
        assert p.params["epochs"] == epochs_by_k[p.factors]
    assert {p.factors for p in points} == set(range(1, 8))
    assert spec.datasets["k7"].resolve().renderer == "3d"
    assert {e.resolve().n for e in spec.datasets.values()} == {1_000_000}
    assert {ep.line for ep in layout["experiment2"]} == {(1.0,), (2.0,), (4.0,), (8.0,)}


def test_small_experiments_keep_the_thesis_grids() -> None:
    """The reduced-scale specs of docs/results.md: the thesis' grids, 3 seeds for Experiment 1
    and 2 for Experiment 2, smaller data."""
    plan1 = load_sweep(SPECS / "experiment1-small.yaml")
    got = {(p.params["latent_dim"], p.params["beta"], p.params["seed"]) for p in plan1.points}
    assert got == {(d, b, s) for d in (5, 10, 15, 20) for b in (1, 2, 4, 8) for s in (0, 1, 2)}
    assert {p.factors for p in plan1.points} == {5}
    assert {ep.x for ep in plan1.layout["experiment1-small"]} == {5, 10, 15, 20}

    plan2 = load_sweep(SPECS / "experiment2-small.yaml")
    got = {(p.factors, p.params["beta"], p.params["seed"]) for p in plan2.points}
    assert got == {(k, b, s) for k in range(1, 8) for b in (1, 2, 4, 8) for s in (0, 1)}
    assert {p.params["latent_dim"] for p in plan2.points} == {20}
    # epochs grow with K as the thesis' do (never fewer for more factors), one score at the end
    epochs = {p.factors: p.params["epochs"] for p in plan2.points}
    assert [epochs[k] for k in range(1, 8)] == sorted(epochs[k] for k in range(1, 8))
    assert epochs[1] >= 3 and epochs[7] > epochs[1]
    assert {p.params["score_every"] for p in plan2.points} == {0}
    assert plan2.spec.datasets["k7"].resolve().renderer == "3d"
    for plan in (plan1, plan2):
        assert {e.resolve().n for e in plan.spec.datasets.values()} == {10_000}
        assert {p.params["score_preset"] for p in plan.points} == {"quick"}


def test_equal_steps_follow_up_matches_experiment2_small() -> None:
    """docs/results.md 2.2.1 compares its runs with experiment2-small's: the same datasets (so
    the same bytes) and the K = 6, 7 schedule, which only holds while the two specs agree."""
    small = load_sweep(SPECS / "experiment2-small.yaml")
    follow = load_sweep(SPECS / "experiment2-equal-steps.yaml")
    for name in ("k3", "k4", "k5"):
        ours, theirs = follow.spec.datasets[name].resolve(), small.spec.datasets[name].resolve()
        assert ours.digest() == theirs.digest()
    longest = {p.params["epochs"] for p in small.points if p.factors in (6, 7)}
    assert {p.params["epochs"] for p in follow.points} == longest
    got = {(p.factors, p.params["beta"], p.params["seed"]) for p in follow.points}
    assert got == {(k, b, s) for k in (3, 4, 5) for b in (1, 8) for s in (0, 1, 2)}
    shared = ("latent_dim", "score_preset", "score_every", "final_preset", "model")
    assert {tuple(p.params[k] for k in shared) for p in follow.points} == {
        tuple(p.params[k] for k in shared) for p in small.points
    }


def test_long_follow_up_matches_experiment2_small() -> None:
    """docs/results.md 2.2.2 trains experiment2-equal-steps' stuck VAE points (K = 3-5) longer,
    and K = 6, 7 beside them, with Experiment 2's four betas (and seeds 3, 4 where beta = 2 led):
    the same datasets (so the same bytes), the same model settings, only the epochs and score
    cadence differ."""
    small = load_sweep(SPECS / "experiment2-small.yaml")
    long = load_sweep(SPECS / "experiment2-long.yaml")
    for name in ("k3", "k4", "k5", "k6", "k7"):
        ours, theirs = long.spec.datasets[name].resolve(), small.spec.datasets[name].resolve()
        assert ours.digest() == theirs.digest()
    got = {(p.factors, p.params["beta"], p.params["seed"]) for p in long.points}
    grid = {(k, b, s) for k in (3, 4, 5, 6, 7) for b in (1, 2, 4, 8) for s in (0, 1, 2)}
    assert got == grid | {(6, b, s) for b in (1, 2) for s in (3, 4)}
    assert {p.params["beta"] for p in small.points} == {1, 2, 4, 8}
    longest = max(p.params["epochs"] for p in small.points)
    assert {p.params["epochs"] for p in long.points} == {20} and 20 > 3 * longest
    shared = ("latent_dim", "score_preset", "final_preset", "model")
    assert {tuple(p.params[k] for k in shared) for p in long.points} == {
        tuple(p.params[k] for k in shared) for p in small.points
    }


def test_experiment1_long_shares_its_d20_runs_with_experiment2_long() -> None:
    """docs/results.md 2.3.1 trains experiment1-small's beta = 1, 2, 4, 8 points for 3,140 steps on
    the same dataset; experiment2-long's K = 5 points are among its D = 20 points (the same ids),
    whose finished runs the sweep took over instead of training them again. D = 15, the one D
    where the beta-VAEs led after 3 seeds, has seeds 3 and 4 as well."""
    small = load_sweep(SPECS / "experiment1-small.yaml")
    long1 = load_sweep(SPECS / "experiment1-long.yaml")
    long2 = load_sweep(SPECS / "experiment2-long.yaml")
    assert long1.spec.datasets["k5"].resolve().digest() == (
        small.spec.datasets["k5"].resolve().digest()
    )
    got = {(p.params["latent_dim"], p.params["beta"], p.params["seed"]) for p in long1.points}
    grid = {(d, b, s) for d in (5, 10, 15, 20) for b in (1, 2, 4, 8) for s in (0, 1, 2)}
    assert got == grid | {(15, b, s) for b in (1, 2, 4, 8) for s in (3, 4)}
    shared = {p.id for p in long1.points if p.params["latent_dim"] == 20}
    assert {p.id for p in long2.points if p.factors == 5} == shared and len(shared) == 12


@pytest.mark.parametrize(
    ("spec_name", "key", "factors"),
    [("experiment2-k5-60-epochs.yaml", "k5", 5), ("experiment2-k4-60-epochs.yaml", "k4", 4)],
)
def test_sixty_epoch_follow_ups_extend_experiment2_longs_runs(
    spec_name: str, key: str, factors: int
) -> None:
    """docs/results.md 2.2.3 and 2.2.4 train experiment2-long's K = 5 and K = 4 points for
    beta = 1 and 8 three times longer: the same dataset (so the same bytes) and the same settings
    but the epochs and the score cadence, which still scores at epoch 20, where experiment2-long's
    runs ended; and seeds 3 and 4 beside them, with the same settings."""
    long = load_sweep(SPECS / "experiment2-long.yaml")
    sixty = load_sweep(SPECS / spec_name)
    assert list(sixty.spec.datasets) == [key]
    assert sixty.spec.datasets[key].resolve().digest() == (
        long.spec.datasets[key].resolve().digest()
    )
    ours = {(p.params["beta"], p.params["seed"]): p.params for p in sixty.points}
    theirs = {
        (p.params["beta"], p.params["seed"]): p.params
        for p in long.points
        if p.factors == factors and p.params["beta"] in (1, 8)
    }
    assert set(theirs) == {(b, s) for b in (1, 8) for s in (0, 1, 2)}
    assert set(ours) == {(b, s) for b in (1, 8) for s in range(5)}
    for (beta, seed), params in ours.items():
        like = theirs[beta, min(seed, 2)]
        assert params["epochs"] == 3 * like["epochs"] == 60
        assert 20 % params["score_every"] == 0 and params["score_every"] > 1
        drop = ("epochs", "score_every", "seed")
        assert {k: v for k, v in params.items() if k not in drop} == {
            k: v for k, v in like.items() if k not in drop
        }


def test_extension_spec_has_the_proposed_variants() -> None:
    plan = load_sweep(SPECS / "extension.yaml")
    points, layout, spec = plan.points, plan.layout, plan.spec
    assert set(layout) == {"normalised-beta", "larger-beta", "annealed"}
    assert {p.params["model"] for p in points} == {"betavae", "annealedvae"}
    assert any("beta_norm" in p.params for p in points)
    assert max(p.params.get("beta", 0) for p in points) > 8
    for exp in spec.experiments:
        assert "kim_mnih_weighted" in exp.report.metrics


def test_run_ids_are_stable_and_depend_on_what_matters() -> None:
    ids = [p.id for p in expand(load_sweep(GOOD))[0]]
    assert ids == [p.id for p in expand(load_sweep(GOOD))[0]]
    assert len(set(ids)) == 4
    # the placement of a run does not change its id; its dataset's definition does
    on_cpu = [
        p.id for p in expand(load_sweep(GOOD.replace("epochs: 1}", "epochs: 1, device: cpu}")))[0]
    ]
    assert on_cpu == ids
    bigger = expand(load_sweep(GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 2, n: 200}")))[
        0
    ]
    changed = {p.id for p in bigger} - set(ids)
    assert len(changed) == 2 and all("_a_" in i for i in changed)


def test_same_point_in_two_experiments_is_one_run() -> None:
    text = """
name: shared
datasets: {a: {factors: 2}}
set: {model: betavae, data: a}
experiments:
  - {name: one, grid: {latent_dim: [4, 6], beta: [1]}, report: {x: latent_dim}}
  - {name: two, grid: {latent_dim: [6], beta: [1, 2]}, report: {x: latent_dim}}
"""
    points, layout = expand(load_sweep(text))
    assert len(points) == 3
    shared = [p for p in points if len(p.experiments) == 2]
    assert len(shared) == 1 and shared[0].params["latent_dim"] == 6


BAD = [
    ("name: t\nbogus: 1\n", "bogus: unknown field; allowed: name"),
    (
        GOOD.replace("grid: {beta: [1, 4]", "grid: {betta: [1, 4]"),
        "grid.betta: not a bench run parameter nor a hyperparameter of 'betavae'",
    ),
    (
        GOOD.replace("beta: [1, 4]", "beta: [1, -4]"),
        "grid.beta[1]: beta must be >= 0, got -4.0",
    ),
    (GOOD.replace("beta: [1, 4]", "beta: []"), "grid.beta: must be a non-empty list"),
    (
        GOOD.replace("zip: {data: [a, b]}", "zip: {data: [a, b], epochs: [1]}"),
        "zip: lists must have the same length",
    ),
    (
        GOOD.replace("zip: {data: [a, b]}", "zip: {data: [a, c]}"),
        "data: 'c' is neither a dataset of datasets: (a, b)",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {n: 100}"),
        "datasets.a: give factors (the number of factors K, 1..7) or spec",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {spec: nowhere.yaml}"),
        "datasets.a.spec: no such dataset spec file",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 2, colour: red}"),
        "datasets.a.colour: unknown field; allowed: spec, factors, n",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 2, eval_preset: huge}"),
        "datasets.a: spec field 'eval_preset': got 'huge'; allowed: full, quick, tiny, none",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 9}"),
        "datasets.a.factors: must be an integer in 1..7, got 9",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 7, renderer: 2d}"),
        "datasets.a: spec field 'renderer': got '2d'; allowed: 3d when factors is 7",
    ),
    (
        GOOD.replace("a: {factors: 2, n: 100}", "a: {factors: 2, renderer: 4d}"),
        "datasets.a: spec field 'renderer': got '4d'; allowed: 2d, 3d",
    ),
    (
        GOOD.replace("report: {x: factors}", "report: {x: size}"),
        "report.x: must be one of model, data, factors",
    ),
    (GOOD.replace("report: {x: factors}", "report: {}"), "report.x: required"),
    (
        GOOD.replace("report: {x: factors}", "report: {x: factors, metrics: [dci]}"),
        "report.metrics: must be drawn from kim_mnih, kim_mnih_weighted, higgins, "
        "higgins_standardised, mig, sap, modularity, explicitness, linear_r2, "
        "linear_r2_best_dim, got 'dci'",
    ),
    (  # DCI is never in metrics.jsonl: its figures and tables were all n/a, "all runs finished"
        GOOD.replace("report: {x: factors}", "report: {x: factors, metrics: [dci_completeness]}"),
        "report.metrics: 'dci_completeness' is scored only with a run's final scores "
        "(summary.json), not after each epoch, and the report draws the per-epoch scores; "
        "allowed: kim_mnih, kim_mnih_weighted",
    ),
    (
        GOOD.replace("report: {x: factors}", "report: {x: factors, lines: seed}"),
        "report.lines: 'seed' is not allowed",
    ),
    (
        GOOD.replace("seed: [0]", "seed: [0], latent_dim: [4, 8]")
        .replace("latent_dim: 4, ", "")
        .replace("report: {x: factors}", "report: {x: factors, lines: beta}"),
        "points differing only in latent_dim share factors=2, beta=1, seed=0; add latent_dim "
        "to report.lines",
    ),
    (GOOD.replace("epochs: 1}", "epochs: 1, out: x}"), "set.out: set by the sweep"),
    (
        GOOD.replace("seed: [0]", f"seed: [0, {2**64}]"),
        f"grid.seed[1]: must be an integer in 0..{2**64 - 1} (2**64 - 1), got {2**64}",
    ),
    (GOOD.replace("seed: [0]", f"seed: [{2**64 - 1}]"), None),
    (
        GOOD.replace("set: {model: betavae,", "set: {model: betavae, score_preset: slow,"),
        "set.score_preset: must be one of quick, full, stored, none",
    ),
    (
        GOOD.replace("zip: {data: [a, b]}", "zip: {factors: [2, 3]}").replace(
            "  a: {factors: 2, n: 100}\n  b: {factors: 3, n: 100}\n", "  {}\n"
        ),
        None,
    ),
    ("name: t\ngrid: {beta: [1]\n", "spec: not valid YAML (line"),
    ("name: bad name\ngrid: {beta: [1]}\n", "name: required; letters, digits"),
    (
        "name: t\nset: {model: betavae}\ngrid: {beta: [1]}\nreport: {x: latent_dim}\n",
        "every point needs data",
    ),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_specs_are_rejected_with_one_clear_line(text: str, message: str | None) -> None:
    if message is None:  # the control: a variant that is fine
        load_sweep(text)
        return
    with pytest.raises(SpecError) as info:
        load_sweep(text)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_numbers_in_exponent_notation_are_numbers() -> None:
    """PyYAML reads YAML 1.1, where ``1e-3`` (no dot, no exponent sign) is text: ``lr: 1e-3``
    was refused as "got '1e-3'" and ``beta: 1e-3`` likewise. Specs read them as YAML 1.2 and
    JSON do; quoted, they stay text and are refused as before."""
    text = GOOD.replace("epochs: 1}", "epochs: 1, lr: 1e-3}").replace(
        "beta: [1, 4]", "beta: [1e-3, 2.5E+2, 1.0e1]"
    )
    points = load_sweep(text).points
    assert {p.params["lr"] for p in points} == {0.001}
    assert {p.params["beta"] for p in points} == {0.001, 250.0, 10.0}
    with pytest.raises(SpecError, match="got '1e-3'"):
        load_sweep(GOOD.replace("epochs: 1}", "epochs: 1, lr: '1e-3'}"))


def test_a_dataset_spec_takes_exponent_notation_as_numbers() -> None:
    from spritegen.spec import parse_spec_text

    plain = parse_spec_text("factors: 3\nn: 100\nfixed: {rotation: 0.75}\n")
    exponent = parse_spec_text("factors: 3\nn: 1e2\nfixed: {rotation: 7.5e-1}\n")
    assert exponent == plain


def test_one_number_written_two_ways_is_one_value_not_two_points() -> None:
    """``beta: [1, 1.0]`` passed the distinct check (it compared reprs) and then both values
    named one run, so the sweep silently had one point fewer than its grid."""
    with pytest.raises(SpecError, match=r"grid.beta: values must be distinct, got \[1, 1.0\]"):
        load_sweep(GOOD.replace("beta: [1, 4]", "beta: [1, 1.0]"))


def test_models_and_their_hyperparameters_are_checked_before_running() -> None:
    with pytest.raises(
        SpecError, match="experiment t: model: unknown model 'betavea'; installed: .*betavae"
    ):
        load_sweep(GOOD.replace("model: betavae", "model: betavea"))
    with pytest.raises(
        SpecError, match="grid.beta: not a bench run parameter nor a hyperparameter of 'vae'"
    ):
        load_sweep(GOOD.replace("model: betavae", "model: vae"))


def test_cli_reports_a_bad_spec_with_exit_2_and_no_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(GOOD.replace("beta: [1, 4]", "beta: [1, x]"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", "sweep", str(spec), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"bench: error: {spec.resolve()}: grid.beta[1]: must be a number or null, got 'x' "
        "(a parameter of model 'betavae')"
    )
    assert not (tmp_path / "out").exists()


def test_data_files_and_published_datasets_are_accepted(tmp_path: Path) -> None:
    # real files: planning opens each as bench run would (an empty file is refused there)
    make_tiny_dataset(tmp_path / "mine.h5", n=16, seed=1)
    write_dsprites_npz(tmp_path / "dsprites.npz")
    text = GOOD.replace("zip: {data: [a, b]}", "zip: {data: [mine.h5, 'dsprites:dsprites.npz']}")
    text = text.replace("report: {x: factors}", "report: {x: data}")
    (tmp_path / "s.yaml").write_text(text)
    points, _ = expand(load_sweep(tmp_path / "s.yaml"))
    assert {p.params["data"] for p in points} == {"mine.h5", "dsprites:dsprites.npz"}
    with pytest.raises(SpecError, match="unknown dataset kind 'mnist'"):
        (tmp_path / "m.yaml").write_text(text.replace("dsprites:", "mnist:"))
        load_sweep(tmp_path / "m.yaml")
    with pytest.raises(SpecError, match="'dsprites:nowhere.npz' is neither a dataset of datasets"):
        (tmp_path / "t.yaml").write_text(text.replace("dsprites.npz", "nowhere.npz"))
        load_sweep(tmp_path / "t.yaml")


def test_a_missing_data_file_names_the_folder_it_was_looked_for_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative data path is relative to the spec's folder, not to the current folder: the
    message says which folder, so that a file placed next to the user is not a mystery."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "s.yaml").write_text(GOOD.replace("zip: {data: [a, b]}", "zip: {data: [a, c.h5]}"))
    make_tiny_dataset(tmp_path / "c.h5", n=16, seed=1)  # where the user is, not where the spec is
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as exc:
        load_sweep(Path("specs/s.yaml"))
    assert str(exc.value).endswith(
        "data: 'c.h5' is neither a dataset of datasets: (a, b) nor an existing file (a spritegen "
        f"file, dsprites:PATH or 3dshapes:PATH); relative paths are resolved from {specs}"
    )


K1_SPEC = "factors: 1\nn: 64\nimage_size: 32\nevaluation: {preset: tiny}\n"


def test_a_sweep_folders_copy_from_older_versions_resolves_from_the_original(
    tmp_path: Path,
) -> None:
    """Sweep folders made before the copy's first line named the folder to resolve from: the
    older line (one per start, the innermost naming the original) still sends the copy's
    relative paths to the original's folder, not to a file of the same name in the sweep."""
    specs, sweep = tmp_path / "specs", tmp_path / "sweep"
    specs.mkdir()
    sweep.mkdir()
    (specs / "k1.yaml").write_text(K1_SPEC)
    (sweep / "k1.yaml").write_text(K1_SPEC.replace("n: 64", "n: 96"))  # not the spec's
    text = GOOD.replace("a: {factors: 2, n: 100}", "a: {spec: k1.yaml}")
    (specs / "s.yaml").write_text(text)
    original = load_sweep(specs / "s.yaml")
    older = "# The sweep spec as read from {} (relative paths are relative to its folder).\n"
    (sweep / "spec.yaml").write_text(
        older.format(sweep / "spec.yaml") + older.format(specs / "s.yaml") + text
    )
    copy = load_sweep(sweep / "spec.yaml")
    assert [p.id for p in copy.points] == [p.id for p in original.points]
    assert copy.spec.text == text and copy.spec.origin == specs / "s.yaml"
    # the copy it writes now is the one the original writes, and reads back as itself
    assert copy_text(copy.spec) == copy_text(original.spec)
    (sweep / "spec.yaml").write_text(copy_text(copy.spec))
    again = load_sweep(sweep / "spec.yaml")
    assert [p.id for p in again.points] == [p.id for p in original.points]
    assert copy_text(again.spec) == copy_text(original.spec)


def test_dry_run_lists_every_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from benchmark.sweep.cli import sweep_command

    out = tmp_path / "sweep"
    args = [str(SPECS / "experiment2.yaml"), "--out", str(out), "--dry-run"]
    res = CliRunner().invoke(sweep_command, args)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == f"sweep folder: {out} (not there yet; the sweep creates it)"
    assert lines[-1] == "84 runs (experiment2: 84); 7 datasets (all to build first); 84 new"
    assert len(lines) == 87 and all(" new  model=betavae " in line for line in lines[1:-2])
    # one compatible set per dataset (K = 1..7): 12 runs each, sized by memory at the start
    assert lines[-2].startswith("ensembles: compatible sets of sizes [12, 12, 12, 12, 12, 12, 12]")


def test_dry_run_shows_the_part_and_the_ensembles_a_sweep_would_train(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from benchmark.sweep.cli import sweep_command

    tiny = [str(SPECS / "sweep-tiny.yaml"), "--out", str(tmp_path / "sweep"), "--dry-run"]
    res = CliRunner().invoke(sweep_command, [*tiny, "--only", "*_k3_*", "--ensemble", "1"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()[1:]
    assert [line.split()[0][:8] for line in lines[:2]] == ["betavae_"] * 2
    assert all("data=k3" in line for line in lines[:2])
    assert lines[2] == "ensembles: none; 2 runs alone"
    assert lines[3] == (
        "4 runs (tiny: 4); 2 datasets (k3 to build first); "
        "this part: 2 runs, 1 dataset, 2 left for other parts (--only); 2 new"
    )
    res = CliRunner().invoke(sweep_command, [*tiny, "--ensemble", "2"])
    assert res.output.strip().splitlines()[-2] == "ensembles: 2 of sizes [2, 2]; 0 runs alone"
    res = CliRunner().invoke(sweep_command, [*tiny, "--ensemble", "off"])
    assert not any(line.startswith("ensembles:") for line in res.output.splitlines())


def _square(x: int) -> int:
    return x * x


def test_local_map_ordered_keeps_item_order() -> None:
    with LocalExecutor(workers=2, window=3) as ex:
        assert list(ex.map_ordered(_square, range(10))) == [i * i for i in range(10)]
    assert list(LocalExecutor(workers=1).map_ordered(math.sqrt, [4, 9])) == [2.0, 3.0]
    with pytest.raises(SpecError, match="executor: must be one of local, ray, got 'dask'"):
        make_executor("dask")
