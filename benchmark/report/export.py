"""Copy a sweep's small records out of its folder, so that a report can be drawn (and committed)
without the datasets, checkpoints and pictures.

    export_runs("results/experiment2-small", "docs/results/runs/experiment2-small")

writes ``DEST/sweep.json`` and, for every finished run, ``DEST/<id>/`` with the run's
``config.json``, ``metrics.jsonl`` and ``summary.json`` (a few kB; no checkpoints, no pictures).
``bench report DEST`` then draws from them. A study run in several parts (on several machines,
or a sweep grown later) is exported part by part into the same DEST: runs accumulate, and the
manifests are merged (each experiment keeps the union of its points), as long as they are the
same sweep (same name) with the same experiment layouts.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.files import staged_folder
from benchmark.report.records import (
    MANIFEST,
    RERUN,
    RUN_ID,
    is_finished,
    is_run_id,
    read_manifest,
    run_folder,
)
from spritegen.atomic import output_path
from spritegen.errors import DatasetError, SpecError, check_output_path, quote

#: The files of a run folder that are records (everything else is a checkpoint or a picture).
RECORD_FILES = ("config.json", "metrics.jsonl", "summary.json")


@dataclass
class ExportResult:
    """What one export did: run ids copied (new or updated), and finished runs already there."""

    dest: Path
    copied: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # in the plan, not finished in the source


def _read_manifest(folder: Path, what: str) -> dict[str, Any]:
    """``folder``'s sweep.json, checked as bench report checks it (``read_manifest``) and with
    the run list the export copies: a damaged manifest was a traceback (``[]``, a point that is
    no object or has no id) after the destination folder had been made."""
    path = folder / MANIFEST
    if not path.is_file():
        raise SpecError(f"{what}: {folder} has no {MANIFEST}; give a folder made by bench sweep")
    manifest = read_manifest(path)
    points = manifest.get("points", [])
    if not isinstance(points, list):
        raise SpecError(f"{what}: {path}: 'points' is {quote(points)}, expected a list of runs")
    for j, p in enumerate(points):
        run_id = p.get("id") if isinstance(p, dict) else None
        if not is_run_id(run_id):
            raise SpecError(f"{what}: {path}: points[{j}] has id {quote(run_id)}; {RUN_ID}")
    return manifest


def _run_ids(manifest: dict[str, Any]) -> list[str]:
    """Every run the manifest names: its run list and its experiments' points (which the
    report draws), so that a manifest without the list exports what its report shows."""
    ids = {p["id"] for p in manifest.get("points", [])}
    ids.update(p["id"] for e in manifest["experiments"] for p in e["points"])
    return sorted(ids)


def merge_manifests(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new`` with the points of ``old`` it lacks, per experiment and overall; SpecError when
    the two are not parts of the same study (another sweep name, or another layout)."""
    if old.get("name") != new.get("name"):
        raise SpecError(
            f"--export: the destination holds sweep {old.get('name')!r}, not {new.get('name')!r}; "
            f"export each sweep into its own folder"
        )
    merged = json.loads(json.dumps(new))
    by_name = {e["name"]: e for e in merged["experiments"]}
    for exp in old.get("experiments", []):
        mine = by_name.get(exp["name"])
        if mine is None:
            merged["experiments"].append(exp)
            continue
        for key in ("x", "lines"):
            if exp.get(key) != mine.get(key):
                raise SpecError(
                    f"--export: experiment {exp['name']!r} has {key} {exp.get(key)!r} in the "
                    f"destination but {mine.get(key)!r} here; export into another folder"
                )
        mine["metrics"] += [m for m in exp.get("metrics", []) if m not in mine["metrics"]]
        have = {p["id"] for p in mine["points"]}
        mine["points"] += [p for p in exp["points"] if p["id"] not in have]
    have = {p["id"] for p in merged.get("points", [])}
    merged.setdefault("points", []).extend(p for p in old.get("points", []) if p["id"] not in have)
    merged.setdefault("datasets", {})
    for name, d in old.get("datasets", {}).items():
        merged["datasets"].setdefault(name, d)
    return merged


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _same_files(a: Path, b: Path) -> bool:
    return all(
        (b / f).is_file() and (a / f).read_bytes() == (b / f).read_bytes() for f in RECORD_FILES
    )


def check_own_folder(
    dest: Path, flag: str, is_ours: Callable[[Path], bool], lacking: str, maker: str
) -> None:
    """Refuse to write into ``dest`` unless it is absent, empty, or was made by this command
    (``is_ours``): the user's own files there must never be overwritten without a word.
    ``lacking`` says what the folder lacks to be ours, ``maker`` what makes such a folder."""
    check_output_path(flag, dest)
    if dest.exists() and not dest.is_dir():
        raise SpecError(f"{flag}: {dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not is_ours(dest):
        raise SpecError(
            f"{flag}: {dest} is not empty and {lacking}; "
            f"choose an empty folder or one made by {maker}"
        )


def export_runs(sweep_dir: Path | str, dest: Path | str) -> ExportResult:
    """Copy ``sweep_dir``'s manifest and its finished runs' records into ``dest`` (see module doc).

    Everything is written into a folder beside ``dest`` and put in place once complete, each run
    folder whole and sweep.json last (``benchmark.files.staged_folder``), so an interrupted export
    never leaves a run with half its records, nor runs without the sweep.json that names them.
    """
    # on the text: Path("") would be the current folder
    sweep_dir, dest = Path(sweep_dir), output_path("--export", dest)
    manifest = _read_manifest(sweep_dir, "SWEEP_DIR")
    if dest.resolve() == sweep_dir.resolve():
        raise SpecError(f"--export: {dest} is the sweep folder itself; choose another folder")
    check_own_folder(
        dest,
        "--export",
        lambda d: (d / MANIFEST).is_file(),
        f"holds no {MANIFEST}",
        "a previous export",
    )
    if dest.is_dir() and any(dest.iterdir()):
        manifest = merge_manifests(_read_manifest(dest, "--export"), manifest)
    result = ExportResult(dest)
    sources: dict[str, Path] = {}
    for run_id in _run_ids(manifest):
        src = run_folder(sweep_dir, run_id)  # runs/<id>, or <id> when exporting an export
        if not is_finished(src):
            if not is_finished(dest / run_id):
                result.unfinished.append(run_id)
            continue
        _check_records(src)
        target = dest / run_id
        if target.is_dir() and _same_files(src, target):
            result.unchanged.append(run_id)
        else:
            sources[run_id] = src
    # written beside, put in place whole (sweep.json last): an interrupted export leaves DEST
    # as it was (a new DEST used to keep its first runs and no sweep.json, and was then refused)
    with staged_folder(dest, "export", "--export", last=MANIFEST) as stage:
        for run_id, src in sources.items():
            (stage / run_id).mkdir()
            for name in RECORD_FILES:
                shutil.copy2(src / name, stage / run_id / name)
            result.copied.append(run_id)
        _write_json(stage / MANIFEST, manifest)
    return result


def _check_records(run_dir: Path) -> None:
    """Refuse, before anything is written, a finished run whose records cannot all be copied:
    one without config.json was a FileNotFoundError traceback halfway through the export,
    which left the runs before it, a ``.ID.partial`` folder and no sweep.json."""
    for name in RECORD_FILES:
        if not (run_dir / name).is_file():
            what = "is not a file" if (run_dir / name).exists() else "is missing"
            raise DatasetError(
                f"{run_dir / name} {what}, but summary.json says the run finished; an export "
                f"copies {', '.join(RECORD_FILES)} of each finished run: {RERUN}"
            )
