"""Run ids that survive moving a project and upgrading the code.

A point whose ``data`` is a file is named by the file's content, not its path: a project (spec,
data, sweep folder) moved to another folder finds its finished runs. A ``+`` in a value is
dropped from the readable prefix (1e+38 reads 1e38, not 1e-38). A sweep folder made by earlier
versions (path ids, ``+`` written ``-``) keeps its ids: nothing is trained again, nothing refused.
Ids of points on ``datasets:`` entries, without a ``+``, are the ones earlier versions gave.

The sweep is real: a data file built with the project's builder, a dataset of ``datasets:``, two
tiny unscored runs trained in this process.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import InProcessPool
from train_fixtures import make_tiny_dataset

import benchmark.sweep.plan
from benchmark.params import BY_KEY
from benchmark.report.records import load_sweep as load_report
from benchmark.sweep import load_sweep, run_sweep
from benchmark.sweep.runner import dry_run
from spritegen.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]

#: One point on a data file (beta 1), one on a dataset of ``datasets:`` with a value written
#: with a ``+`` (beta 1e+06): each of the two changes of the ids, on a point of its own.
SPEC = """name: ids
datasets:
  k1: {factors: 1, n: 64, image_size: 32, eval_preset: tiny}
set: {model: betavae, latent_dim: 3, epochs: 1, batch_size: 32, score_preset: none,
      final_preset: none}
points:
  - {data: data/mine.h5, beta: 1.0}
  - {data: k1, beta: 1.0e+6}
report: {x: data, lines: beta}
"""


def _start(spec: Path, sweep: Path) -> Any:
    """``bench sweep SPEC --out SWEEP --ensemble off``, trained in this process."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("benchmark.sweep.runner.make_run_pool", lambda *a, **k: InProcessPool())
        return run_sweep(
            load_sweep(spec), out=sweep, build_workers=1, progress=False, ensemble="off"
        )


def _manifest_ids(sweep: Path) -> list[str]:
    return [p["id"] for p in json.loads((sweep / "sweep.json").read_text())["points"]]


def _summaries(sweep: Path) -> dict[str, int]:
    """Each run folder's summary.json and its mtime: a run trained again would rewrite it."""
    return {p.parent.name: p.stat().st_mtime_ns for p in (sweep / "runs").glob("*/summary.json")}


def _states(lines: list[str]) -> dict[str, str]:
    """Run id -> the state its dry-run line shows."""
    return {
        line.split()[0]: line.split("  model=")[0][len(line.split()[0]) :].strip()
        for line in lines
        if "  model=" in line
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder: spec.yaml, data/mine.h5 and its finished sweep folder sweep/."""
    root = tmp_path_factory.mktemp("ids") / "project"
    (root / "data").mkdir(parents=True)
    make_tiny_dataset(root / "data" / "mine.h5", n=64, seed=1, factors=1, image_size=32)
    (root / "spec.yaml").write_text(SPEC)
    result = _start(root / "spec.yaml", root / "sweep")
    assert result.ok, [o.error for o in result.failed]
    assert len(result.finished) == 2
    return root


def _copy(project: Path, to: Path) -> Path:
    to.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(project, to, symlinks=True)
    return to


@pytest.mark.slow
def test_a_moved_project_finds_its_finished_runs(project: Path, tmp_path: Path) -> None:
    """Spec, data file and sweep folder moved together to another folder: the same ids, the
    dry run says finished, a start trains nothing and the report finds every run."""
    here = _copy(project, tmp_path / "here" / "project")
    ids = _manifest_ids(here / "sweep")
    before = _summaries(here / "sweep")
    moved = tmp_path / "elsewhere" / "deeper" / "moved"
    moved.parent.mkdir(parents=True)
    here.rename(moved)
    assert _states(dry_run(load_sweep(moved / "spec.yaml"), out=moved / "sweep")) == {
        i: "finished" for i in ids
    }
    result = _start(moved / "spec.yaml", moved / "sweep")
    assert result.ok and result.finished == [] and sorted(result.skipped) == sorted(ids)
    assert sorted(p.id for p in load_sweep(moved / "spec.yaml").points) == sorted(ids)
    assert _summaries(moved / "sweep") == before
    assert _manifest_ids(moved / "sweep") == ids
    _, experiments = load_report(moved / "sweep")
    assert [e.missing for e in experiments] == [[]]


# --- the ids of earlier versions ----------------------------------------------------------------


def _old_safe(s: str) -> str:
    """``_safe`` of earlier versions: a ``+`` written ``-``."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in s)


def _old_run_id(params: dict[str, Any], data_identity: dict[str, Any]) -> str:
    """The run id of earlier versions (benchmark/sweep/plan.py before content ids), written
    out here rather than taken from the code under test."""
    hparams = sorted(k for k in params if k not in BY_KEY)
    parts = []
    for key in ["model", "data", "factors", "latent_dim", *hparams, "seed"]:
        if key in params:
            v = params[key]
            if key == "data":
                v = Path(str(v)).stem
            text = f"{v:g}" if isinstance(v, float) else str(v)
            parts.append((BY_KEY[key].id_prefix if key in BY_KEY else key) + _old_safe(text))
    identity = {k: v for k, v in params.items() if k not in BY_KEY or BY_KEY[k].identity}
    identity["data"] = data_identity
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
    return "_".join(parts + [digest])


def _make_legacy(project: Path) -> dict[str, str]:
    """Turn a finished sweep folder into the one earlier versions made of the same spec, where
    the project lies now: each run folder, the manifest's entries and the ids the runs' records
    name renamed to the old id. Returns new id -> old id."""
    sweep = project / "sweep"
    manifest = json.loads((sweep / "sweep.json").read_text())
    old = {}
    for p in manifest["points"]:
        name = p["params"]["data"]
        if p["dataset"] is not None:
            data = {"dataset": name, "definition": manifest["datasets"][name]["digest"]}
        else:  # the file's absolute path, as data_argument gives it
            data = {"file": str((project / name).resolve())}
        old[p["id"]] = _old_run_id(p["params"], data)

    def renamed(text: str) -> str:
        for new_id, old_id in old.items():
            text = text.replace(new_id, old_id)
        return text

    for new_id, old_id in old.items():
        (sweep / "runs" / new_id).rename(sweep / "runs" / old_id)
        for f in (sweep / "runs" / old_id).rglob("*"):
            if f.suffix in (".json", ".jsonl", ".log"):
                f.write_text(renamed(f.read_text()))
    (sweep / "sweep.json").write_text(renamed((sweep / "sweep.json").read_text()))
    return old


@pytest.mark.slow
def test_a_sweep_folder_of_earlier_versions_keeps_its_ids(project: Path, tmp_path: Path) -> None:
    """A folder whose runs carry the ids earlier versions gave (the data file by its path, 1e+06
    written 1e-06): the points take those ids, the dry run says finished, a start trains nothing
    and refuses nothing, the report finds every run; a point added later gets a new id."""
    root = _copy(project, tmp_path / "project")
    sweep = root / "sweep"
    old = _make_legacy(root)
    # each point's id changed: the file point's hash (its path), the other's prefix (its +)
    assert all(new_id != old_id for new_id, old_id in old.items())
    assert sum("_beta1e-06_" in i for i in old.values()) == 1
    assert sum("_beta1e06_" in i for i in old) == 1
    before = _summaries(sweep)
    assert set(before) == set(old.values())

    plan = load_sweep(root / "spec.yaml")
    assert sorted(p.id for p in plan.points) == sorted(old)  # a new folder gets the new ids
    assert _states(dry_run(plan, out=sweep)) == {i: "finished" for i in old.values()}
    result = _start(root / "spec.yaml", sweep)
    assert result.ok and result.finished == [] and sorted(result.skipped) == sorted(old.values())
    assert _summaries(sweep) == before
    assert sorted(_manifest_ids(sweep)) == sorted(old.values())
    _, experiments = load_report(sweep)
    assert [e.missing for e in experiments] == [[]]
    assert sorted(p["id"] for e in experiments for p in e.points) == sorted(old.values())

    # the spec grown by a point: it trains under its new id, the old runs keep theirs
    (root / "spec.yaml").write_text(SPEC.replace("report:", "  - {data: k1, beta: 4.0}\nreport:"))
    grown = _start(root / "spec.yaml", sweep)
    assert grown.ok and sorted(grown.skipped) == sorted(old.values())
    (added,) = [o.id for o in grown.finished]
    assert added not in old.values() and "_beta4_" in added
    assert sorted(_manifest_ids(sweep)) == sorted([*old.values(), added])


# --- planning only ------------------------------------------------------------------------------

GOOD = """name: t
datasets:
  a: {factors: 2, n: 100}
set: {model: betavae, latent_dim: 4, epochs: 1}
"""


def test_a_plus_in_a_value_does_not_read_as_a_negative_exponent() -> None:
    points = load_sweep(
        GOOD + "grid: {data: [a], beta: [1.0e+38, 1.0e-38, 1.0e+6]}\nreport: {x: beta}\n"
    ).points
    ids = {p.params["beta"]: p.id for p in points}
    assert ids[1e38].startswith("betavae_a_D4_beta1e38_")
    assert ids[1e-38].startswith("betavae_a_D4_beta1e-38_")
    assert ids[1e6].startswith("betavae_a_D4_beta1e06_")
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", i) for i in ids.values())


def test_a_data_file_is_named_by_its_content_not_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two copies of one file in two folders give the same ids; another file of the same name
    (another seed) gives another; each file is opened once however many points use it."""
    make_tiny_dataset(tmp_path / "one" / "mine.h5", n=16, seed=1)
    make_tiny_dataset(tmp_path / "other" / "mine.h5", n=16, seed=2)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    text = GOOD + "grid: {data: [mine.h5], beta: [1, 2, 4]}\nreport: {x: beta}\n"
    opened: list[str] = []
    real = benchmark.sweep.plan.open_data

    def counting(arg: Any, **kwargs: Any) -> Any:
        opened.append(str(arg))
        return real(arg, **kwargs)

    monkeypatch.setattr(benchmark.sweep.plan, "open_data", counting)
    ids = {}
    for folder in ("one", "two", "other"):
        (tmp_path / folder / "s.yaml").write_text(text)
        ids[folder] = [p.id for p in load_sweep(tmp_path / folder / "s.yaml").points]
    assert ids["one"] == ids["two"]
    assert all(i.startswith("betavae_mine_D4_") for i in ids["one"])
    assert not set(ids["one"]) & set(ids["other"])
    assert sorted(opened) == sorted(str((tmp_path / f / "mine.h5").resolve()) for f in ids)


def test_two_files_of_one_content_in_one_experiment_are_named_as_such(tmp_path: Path) -> None:
    """Two copies of one file are one run, so one experiment cannot place them apart: the line
    says so (it said "points differing only in data share data=one/mine.h5" and advised adding
    data to report.lines, which was already the x axis). Another content under the same name
    still plans as two points; across experiments the copies share their run."""
    make_tiny_dataset(tmp_path / "one" / "mine.h5", n=16, seed=1)
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    make_tiny_dataset(tmp_path / "other" / "mine.h5", n=16, seed=2)
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD + "grid: {data: [one/mine.h5, two/mine.h5]}\nreport: {x: data}\n")
    with pytest.raises(SpecError) as info:
        load_sweep(spec)
    assert str(info.value).endswith(
        "data 'one/mine.h5' and 'two/mine.h5' hold the same dataset (equal content), so their "
        "points are one run; name only one of them"
    )
    spec.write_text(GOOD + "grid: {data: [one/mine.h5, other/mine.h5]}\nreport: {x: data}\n")
    assert len(load_sweep(spec).points) == 2
    spec.write_text(
        GOOD
        + "experiments:\n"
        + "  - {name: a, set: {data: one/mine.h5}, report: {x: data}}\n"
        + "  - {name: b, set: {data: two/mine.h5}, report: {x: data}}\n"
    )
    plan = load_sweep(spec)
    assert len(plan.points) == 1 and plan.points[0].experiments == ["a", "b"]


#: Ids of the bundled specs as earlier versions gave them: sha256 of the ids, one a line, in plan
#: order (computed with the code before content ids).
SPEC_IDS = {
    "experiment1": "3c9c31f7c23e9768",
    "experiment2": "556bb2597d9833fe",
    "extension": "b36f6d5a3a4fb2af",
    "sweep-tiny": "51f4ee4f41db20e1",
    "experiment1-small": "0d68f581be13ef84",
    "experiment2-small": "fd8c34ce9173d3d6",
}

PINNED = """name: pinned
datasets:
  a: {factors: 2, n: 100}
set: {model: betavae, latent_dim: 4, epochs: 1}
experiments:
  - name: named
    grid: {data: [a], beta: [1.0e-6, 0.5, 3, 1.0e+3], seed: [0, 7]}
    report: {x: beta}
  - name: by_k
    grid: {factors: [1, 3], beta_norm: [0.0025], latent_dim: [10]}
    report: {x: factors}
"""

#: PINNED's ids as earlier versions gave them.
PINNED_IDS = [
    "betavae_a_D4_beta1e-06_s0_16341f2d",
    "betavae_a_D4_beta1e-06_s7_d48b7d62",
    "betavae_a_D4_beta0.5_s0_f06f82aa",
    "betavae_a_D4_beta0.5_s7_f54a9061",
    "betavae_a_D4_beta3_s0_ffaeea88",
    "betavae_a_D4_beta3_s7_1de0b49b",
    "betavae_a_D4_beta1000_s0_227dca3e",
    "betavae_a_D4_beta1000_s7_089e9787",
    "betavae_K1_D10_beta_norm0.0025_eb5d0256",
    "betavae_K3_D10_beta_norm0.0025_f101cb80",
]


def test_ids_of_datasets_and_values_without_a_plus_are_unchanged() -> None:
    """Every point of the bundled specs (all on datasets: entries) and a few of each kind
    (a dataset name, K, small and large floats, ints) keep the ids earlier versions gave."""
    for name, digest in SPEC_IDS.items():
        points = load_sweep(ROOT / "specs" / f"{name}.yaml").points
        # experiment1-small grew a third seed later; its first two seeds must keep their ids
        ids = [p.id for p in points if name != "experiment1-small" or p.params["seed"] < 2]
        assert hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] == digest, name
    assert [p.id for p in load_sweep(PINNED).points] == PINNED_IDS
