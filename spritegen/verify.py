"""Check a dataset file against itself, against its stored spec and against the renderer.

``verify`` exists to report damage, so it never stops at the first problem: each one found is a
line naming *where* it is, and the checks that do not depend on the damaged part still run. The
checks follow the chain from which a build derives every byte of its file:

* the stored spec against its hash (``spec_sha256``) and the attributes copied from it (``seed``,
  ``renderer``, ``num_images``, ``num_factors``, ``image_shape``), the ``/metadata`` tables
  derived from it, and the spec's sizes against the datasets present;
* the stored factors and evaluation indices against those the spec's seed plans (``plan_build``
  again: about 0.6 s for a full seven-factor file), so a changed seed or factor shows up;
* every stored chunk against its checksum (corruption on disk shows up as a chunk and its row
  range), and the chunk layout against the one the build writes;
* a re-render of a random sample of stored factor vectors, compared pixel by pixel (a renderer
  or library change shows up as mismatching rows);
* the whole-content checksum (``content_sha256``) and the ``dataset_id`` derived from it.

Only ``package_version``, ``renderer_info`` and ``library_versions`` cannot be checked.
A file that is not a readable dataset at all is refused by ``open_dataset`` (one
``DatasetError`` line, exit 2), as is one whose stored spec is not a readable spec.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from spritegen.datafile import (
    group_attr_fault,
    hdf5_message,
    metadata_faults,
    open_dataset,
    raised_by_hdf5,
    read_attrs,
    stored_spec,
)
from spritegen.errors import counted, quote
from spritegen.evalsets import INDEX_PATHS, plan_build, stored_image_sets
from spritegen.factors import factor_faults
from spritegen.oracle import Oracle
from spritegen.spec import DatasetSpec

#: Image sets added by format version 2; a version-1 file was built without them.
V2_SET_PREFIX = "eval/random/"
#: Rows (or sets) listed by name in one line before the rest is cut to "...".
LISTED = 10


@dataclass
class VerifyReport:
    path: str
    problems: list[str] = field(default_factory=list)
    chunks_checked: int = 0
    images_rerendered: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _ImageSet:
    """One image set of the file; ``images``/``factors`` are None when unusable (reported)."""

    images_path: str
    factors_path: str
    images: h5py.Dataset | None
    factors: h5py.Dataset | None
    values: np.ndarray | None = None  # the stored factors, read once


def verify(
    path: str | Path, sample: int = 256, seed: int = 0, progress: bool = False
) -> VerifyReport:
    """Run every check on the file at ``path``; ``sample`` stored images per set are re-rendered.

    Problems are collected in the report, not raised: only a file ``open_dataset`` refuses, or
    one whose stored spec cannot be parsed, raises a ``DatasetError``.
    """
    for name, value in (("sample", sample), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"verify: {name} must be an integer >= 0, got {value!r}")
    report = VerifyReport(str(path))
    rng = np.random.default_rng(seed)
    with open_dataset(path, check_arrays=False) as f:
        spec = stored_spec(path, f)
        oracle = Oracle.from_spec(spec)
        try:
            _run_checks(f, spec, oracle, sample, rng, report)
        except (RuntimeError, KeyError, OSError, ValueError) as exc:
            if not raised_by_hdf5(exc):
                raise
            report.problems.append(
                f"HDF5 cannot read the file's structure ({hdf5_message(exc)}): the file is "
                "damaged; the checks after this point did not run"
            )
        finally:
            oracle.close()
    return report


def _run_checks(
    f: h5py.File,
    spec: DatasetSpec,
    oracle: Oracle,
    sample: int,
    rng: np.random.Generator,
    report: VerifyReport,
) -> None:
    """Every check, in the order of the chain a build derives the file from; each reports what
    it finds and leaves out what an earlier one found unusable."""
    attrs = read_attrs(f)
    _check_attributes(f, attrs, spec, report)
    report.problems += metadata_faults(f, spec)
    sets = _usable_sets(f, report)
    fits = _check_spec_fits(f, attrs, spec, sets, report)
    layouts = []
    for s in sets:
        if s.images is not None:
            found = _stored_layout(s.images, spec)
            layouts += [f"/{s.images_path} {found}"] if found else []
            _check_chunks(f, s.images_path, s.images, spec, report)
    if layouts:
        report.problems.append(_layout_line(layouts, spec))
    if fits:
        _check_plan(f, attrs, spec, sets, report)
    for s in sets:
        _check_rerender(oracle, s, attrs, sample, rng, report)
    _check_content(f, attrs, report)


def content_checksum(f) -> str:
    """SHA-256 over every image set's path, chunk checksums and factors, then the evaluation
    indices, in build order: the file's ``content_sha256``. The build and ``verify`` both call
    this, so the definition exists once."""
    h = hashlib.sha256()
    for images_path, factors_path in stored_image_sets(f):
        h.update(images_path.encode())
        h.update(f[f"checksums/{images_path}"][()].tobytes())
        h.update(f[factors_path][()].astype(np.float32).tobytes())
    for path in (p for p in INDEX_PATHS if p in f):
        h.update(path.encode())
        h.update(f[path][()].tobytes())
    return h.hexdigest()


# --- the stored spec and the attributes derived from it ---------------------------------------


def _stored_text(f) -> str:
    text = f.attrs["spec"]
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _check_attributes(f, attrs: dict[str, Any], spec: DatasetSpec, report: VerifyReport) -> None:
    """The spec's hash, the attributes the build copies from the spec, and the dataset id.

    A file whose spec (or seed) was edited still parses and still renders; only these
    comparisons show that it is no longer the file its spec describes.
    """
    digest = hashlib.sha256(_stored_text(f).encode()).hexdigest()
    found = attrs.get("spec_sha256")
    if found is None:
        report.problems.append(
            "attribute 'spec_sha256' is missing (the build stores the SHA-256 of the spec)"
        )
    elif found != digest:
        report.problems.append(
            f"attribute 'spec_sha256' is {quote(found, 20)}, but the stored spec hashes to "
            f"{digest[:16]}...: the spec or its hash changed since the build"
        )
    copied = {  # attribute: (the spec's field, its value)
        "seed": ("seed", spec.seed),
        "renderer": ("renderer", spec.renderer),
        "num_images": ("n", spec.n),
        "num_factors": ("factors", spec.factors),
        "image_shape": ("image shape", list(spec.image_shape)),
    }
    for key, (spec_field, expected) in copied.items():
        value = attrs.get(key)
        if value != expected:
            report.problems.append(
                f"attribute '{key}' is {quote(value)}, but the stored spec's {spec_field} is "
                f"{quote(expected)}: one of them changed since the build"
            )
    content = attrs.get("content_sha256")
    dataset_id = attrs.get("dataset_id")
    if not isinstance(content, str) or dataset_id != content[:12]:
        report.problems.append(
            f"attribute 'dataset_id' is {quote(dataset_id)}, but the build derives it from "
            f"content_sha256 (its first 12 hex digits: {quote(str(content)[:12])})"
        )


def _usable_sets(f, report: VerifyReport) -> list[_ImageSet]:
    """Every image set present, its images and factors checked to be datasets of the shape the
    build writes (one factor row per image, like /images and /factors); what is not is
    reported, and left out of the checks that would read it."""
    train_images = f["images"] if isinstance(f["images"], h5py.Dataset) else None
    train_factors = f["factors"] if isinstance(f["factors"], h5py.Dataset) else None
    sets = []
    for images_path, factors_path in stored_image_sets(f):
        images = _dataset(f, images_path, "", report)
        if images is not None:
            like = train_images.shape[1:] if train_images is not None else images.shape[1:]
            if images.ndim != 4 or images.dtype != np.uint8 or images.shape[1:] != like:
                report.problems.append(
                    f"/{images_path} has shape {images.shape} and type {images.dtype}; expected "
                    f"(rows, {', '.join(map(str, like))}) uint8 images like /images"
                )
                images = None
        factors = _dataset(f, factors_path, f"factors of /{images_path}", report)
        values = None
        if factors is not None:
            rows = images.shape[0] if images is not None else None
            k = train_factors.shape[-1] if train_factors is not None else None
            fits = factors.ndim == 2 and factors.dtype.kind in "fiu"
            fits = fits and rows in (None, factors.shape[0]) and k in (None, factors.shape[1])
            if not fits:
                report.problems.append(
                    f"/{factors_path} has shape {factors.shape} and type {factors.dtype}; "
                    f"expected ({rows or 'rows'}, {k or 'K'}) numbers: one row per image of "
                    f"/{images_path}, one column per factor of /factors"
                )
            else:
                values = _read(factors, report)
        usable = _ImageSet(
            images_path, factors_path, images, factors if values is not None else None, values
        )
        sets.append(usable)
    return sets


def _read(dset: h5py.Dataset, report: VerifyReport) -> np.ndarray | None:
    """All of ``dset``, or None with a line saying why it cannot be read (corrupt chunks)."""
    try:
        return dset[()]
    except OSError as exc:
        report.problems.append(f"{dset.name} is unreadable ({exc})")
        return None


def _dataset(f, path: str, what: str, report: VerifyReport) -> h5py.Dataset | None:
    """``f[path]`` if it is a dataset; else None, with a line saying what was found."""
    obj = f.get(path)
    if isinstance(obj, h5py.Dataset):
        return obj
    found = "is missing" if obj is None else f"is a {type(obj).__name__.lower()}, not a dataset"
    report.problems.append(f"/{path}{f' ({what})' if what else ''} {found}")
    return None


def _planned_total(spec: DatasetSpec, version: int) -> int:
    """Images a build of ``spec`` in format ``version`` holds, from its sizes alone."""
    sizes = spec.evaluation
    v2_only = sizes.random_train + sizes.random_eval if version < 2 else 0
    return spec.n + sizes.total_images - v2_only


def _check_spec_fits(
    f, attrs: dict[str, Any], spec: DatasetSpec, sets: list[_ImageSet], report: VerifyReport
) -> bool:
    """Whether the stored spec describes the training set (factor count, n, image shape) and
    plans at most twice the images present; one line listing every difference when it does not.
    Only a spec that fits is planned again: one edited to a million images must not make
    verify plan a million (a set missing from the file is named by the plan check)."""
    train = sets[0] if sets and sets[0].images_path == "images" else None
    diffs = []
    if train is None or train.factors is None or train.images is None:
        return False  # already reported; nothing to compare the spec with
    n, k = train.factors.shape
    if spec.factors != k:
        diffs.append(f"factors {spec.factors} (/factors has {k} columns)")
    if spec.n != n:
        diffs.append(f"n {spec.n} (/factors has {n} rows)")
    if spec.image_shape != train.images.shape[1:]:
        diffs.append(f"images of shape {spec.image_shape} (/images holds {train.images.shape[1:]})")
    planned = _planned_total(spec, int(attrs["format_version"]))
    held = sum(s.images.shape[0] for s in sets if s.images is not None)
    if planned > 2 * held:
        diffs.append(f"{planned:,} images in all (the file holds {held:,})")
    if diffs:
        report.problems.append(
            f"the stored spec does not describe this file's data: it gives {'; '.join(diffs)}"
        )
    return not diffs


# --- the factors the seed plans ---------------------------------------------------------------


def _check_plan(
    f, attrs: dict[str, Any], spec: DatasetSpec, sets: list[_ImageSet], report: VerifyReport
) -> None:
    """The stored factors, evaluation indices and set sizes must be those ``spec`` plans.

    The build samples every factor vector from the spec's seed before rendering, so planning
    again reproduces them exactly; a changed seed (in the spec and its copies alike) or an
    edited factor value shows up here even when every checksum was recomputed to match.
    """
    version = int(attrs["format_version"])
    plan = plan_build(spec)
    planned = [p for p in plan.image_sets if _in_version(p.images_path, version)]
    held = {s.images_path: s for s in sets}
    differing = []
    for p in planned:
        s = held.get(p.images_path)
        if s is None:
            report.problems.append(
                f"/{p.images_path} is missing: the stored spec plans {len(p.factors):,} images "
                "there"
            )
        elif s.values is not None:  # else reported by _usable_sets
            differing += _differing_factors(s, p.factors, report)
    for extra in sorted(set(held) - {p.images_path for p in planned}):
        report.problems.append(f"/{extra} is not an image set the stored spec plans")
    if differing:
        more = [f"and {len(differing) - 3} more sets"] if len(differing) > 3 else []
        report.problems.append(
            f"stored factors differ from those the stored spec plans from its seed "
            f"({spec.seed}): {', '.join(differing[:3] + more)}{_numpy_note(attrs)}"
        )
    groups = {g: a for g, a in plan.group_attrs.items() if _in_version(f"{g}/", version)}
    _check_planned_indices(f, plan.arrays, groups, report)


def _in_version(path: str, version: int) -> bool:
    """Whether a build in format ``version`` writes ``path`` (version 1 had no sample sets)."""
    return version >= 2 or not path.startswith(V2_SET_PREFIX)


def _differing_factors(s: _ImageSet, planned: np.ndarray, report: VerifyReport) -> list[str]:
    """``[where]`` when the stored factors of ``s`` are not bit for bit ``planned``, else []."""
    assert s.values is not None
    if s.values.shape != planned.shape:
        report.problems.append(
            f"/{s.factors_path} has shape {s.values.shape}; the stored spec plans {planned.shape}"
        )
        return []
    stored = np.ascontiguousarray(s.values, dtype=np.float32).view(np.uint32)
    bad = np.flatnonzero((stored != planned.astype(np.float32).view(np.uint32)).any(axis=1))
    if not len(bad):
        return []
    if len(bad) == len(stored):
        return [f"/{s.factors_path} (all {len(bad):,} rows)"]
    return [f"/{s.factors_path} {_rows_text(bad)} ({len(bad):,} of {len(stored):,} rows)"]


def _check_planned_indices(
    f,
    arrays: dict[str, np.ndarray],
    group_attrs: dict[str, dict[str, object]],
    report: VerifyReport,
) -> None:
    """The evaluation sets' factor indices and group attributes (batch size, number of points)
    the metrics read: stored as planned, or named."""
    differing = []
    for path, array in arrays.items():
        stored = f.get(path)
        if not isinstance(stored, h5py.Dataset):
            what = "missing" if stored is None else "not a dataset"
            report.problems.append(f"/{path} is {what}: the stored spec plans {len(array)} entries")
        elif not np.array_equal(stored[()], array):
            differing.append(f"/{path}")
    if differing:
        report.problems.append(
            f"evaluation indices differ from those the stored spec plans: {', '.join(differing)}"
        )
    for group, expected in group_attrs.items():
        for key, value in expected.items():
            fault = group_attr_fault(f, group, key, value)
            if fault:
                report.problems.append(fault)


def _numpy_note(attrs: dict[str, Any]) -> str:
    """Factors are drawn by numpy's generators: name a numpy change if there was one."""
    built = attrs.get("library_versions", {}).get("numpy")
    if built and built != np.__version__:
        return f" (built with numpy {built}, this is numpy {np.__version__})"
    return ""


def _rows_text(rows: np.ndarray) -> str:
    more = "..." if len(rows) > LISTED else ""
    return f"row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:LISTED]))}{more}"


# --- chunks -----------------------------------------------------------------------------------


def _stored_layout(dset: h5py.Dataset, spec: DatasetSpec) -> str | None:
    """How ``dset`` is stored, when that is not how a build of ``spec`` stores it (chunks of
    ``chunk_images`` whole images, gzip at the spec's level or no filter); else None.
    ``bench`` reads the training set chunk by chunk, and refuses one not in whole-image chunks."""
    chunks = (min(spec.chunk_images, dset.shape[0]),) + dset.shape[1:]
    gzip = spec.compression == "gzip"
    built = ("gzip", spec.compression_level) if gzip else (None, None)
    found = (dset.compression, dset.compression_opts)
    if dset.chunks == chunks and found == built and not (dset.shuffle or dset.fletcher32):
        return None
    filters = [f"{dset.compression} level {dset.compression_opts}"] if dset.compression else []
    filters += ["shuffle"] * bool(dset.shuffle) + ["fletcher32"] * bool(dset.fletcher32)
    layout = "contiguous" if dset.chunks is None else f"in chunks of {dset.chunks}"
    return f"{layout} with {', '.join(filters) or 'no filter'}"


def _layout_line(found: list[str], spec: DatasetSpec) -> str:
    """One line for every image set stored otherwise than the build stores it."""
    built = f"gzip level {spec.compression_level}" if spec.compression == "gzip" else "no filter"
    more = [f"and {len(found) - 3} more"] if len(found) > 3 else []
    return (
        f"{counted(len(found), 'image set')} not stored as the build stores them (chunks of "
        f"{spec.chunk_images} whole images, or one chunk for a smaller set, with {built}): "
        f"{', '.join(found[:3] + more)}; rewritten since the build, or the spec's storage "
        "section changed"
    )


def _check_chunks(
    f, images_path: str, dset: h5py.Dataset, spec: DatasetSpec, report: VerifyReport
) -> None:
    """Hash every chunk's raw rows against ``/checksums/...``, whatever the layout.

    Stored as the build stores it, each chunk is read raw and inflated here (fast); rewritten in
    another layout, the same row ranges are read through HDF5 instead, so a rewritten but intact
    set is told apart from a changed one.
    """
    expected = f[f"checksums/{images_path}"][()]
    whole = dset.chunks is not None and dset.chunks[1:] == dset.shape[1:]
    rows_per_chunk = dset.chunks[0] if whole else spec.chunk_images
    num_chunks = -(-dset.shape[0] // rows_per_chunk)
    if expected.shape[0] != num_chunks:
        report.problems.append(
            f"/checksums/{images_path} holds {expected.shape[0]} checksums, but "
            f"/{images_path} has {num_chunks} chunks of {rows_per_chunk} rows"
        )
        return
    raw_path = whole and dset.compression in ("gzip", None) and not dset.shuffle
    raw_path = raw_path and not dset.fletcher32 and dset.scaleoffset is None
    row_bytes = int(np.prod(dset.shape[1:]))
    for c in range(num_chunks):
        start = c * rows_per_chunk
        stop = min(start + rows_per_chunk, dset.shape[0])
        where = f"/{images_path} rows {start}..{stop - 1} (chunk {c})"
        try:
            if raw_path:
                _, stored = dset.id.read_direct_chunk((start, 0, 0, 0))
                raw = zlib.decompress(stored) if dset.compression == "gzip" else stored
            else:
                raw = dset[start:stop].tobytes()
        except Exception as exc:  # zlib.error, KeyError (missing chunk), OSError
            report.problems.append(f"{where}: unreadable ({type(exc).__name__}: {exc})")
            continue
        digest = hashlib.sha256(raw[: (stop - start) * row_bytes]).digest()
        if digest != expected[c].tobytes():
            report.problems.append(f"{where}: checksum mismatch (data changed since the build)")
        report.chunks_checked += 1


# --- re-rendering -----------------------------------------------------------------------------


def _unrenderable(oracle: Oracle, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Rows no image can be rendered from (a NaN or infinity, a class index that is not one of
    the factor's classes, a value outside its factor's range) and what is wrong with them: the
    oracle refuses such values, so they are named here and left out of the re-rendered sample."""
    bad = np.zeros(len(values), dtype=bool)
    faults = factor_faults(oracle.space, values)
    for fault in faults:
        bad |= fault.rows
    # non-finite values first, each reason once
    faults.sort(key=lambda fault: fault.kind != "non-finite")
    why = dict.fromkeys(fault.reason(oracle.space) for fault in faults)
    return bad, " or ".join(why)


def _check_rerender(
    oracle: Oracle,
    s: _ImageSet,
    attrs: dict[str, Any],
    sample: int,
    rng: np.random.Generator,
    report: VerifyReport,
) -> None:
    """Re-render ``sample`` random stored factor vectors and compare them with the stored
    pixels. Rows holding values that cannot be rendered are reported and left out."""
    if s.images is None or s.values is None:
        return
    if s.values.shape[1] != oracle.num_factors or s.images.shape[1:] != oracle.observation_shape:
        return  # the spec does not describe this set: reported by _check_spec_fits
    bad, why = _unrenderable(oracle, s.values)
    if bad.any():
        rows = np.flatnonzero(bad)
        report.problems.append(
            f"/{s.factors_path}: {counted(len(rows), 'row')} with {why}, which no image is "
            f"rendered from ({_rows_text(rows)})"
        )
    good = np.flatnonzero(~bad)
    if not sample or not len(good):
        return
    rows = np.sort(rng.choice(good, size=min(sample, len(good)), replace=False))
    try:
        stored = s.images[rows]
    except Exception as exc:
        report.problems.append(f"/{s.images_path}: sample unreadable ({exc})")
        return
    try:
        fresh = oracle.render(s.values[rows])
    except (ValueError, OverflowError) as exc:  # values the checks above do not foresee
        report.problems.append(f"/{s.factors_path}: sampled rows cannot be rendered ({exc})")
        return
    differ = np.flatnonzero((fresh != stored).reshape(len(rows), -1).any(axis=1))
    report.images_rerendered += len(rows)
    if len(differ):
        diff = np.abs(fresh[differ].astype(int) - stored[differ].astype(int)).max()
        report.problems.append(
            f"/{s.images_path}: {len(differ)} of {len(rows)} re-rendered images differ "
            f"({_rows_text(rows[differ])}; max pixel difference {diff}); renderer recorded: "
            f"{attrs.get('renderer_info')}"
        )


# --- the whole content ------------------------------------------------------------------------


def _check_content(f, attrs: dict[str, Any], report: VerifyReport) -> None:
    """``content_sha256`` recomputed from the file; it covers the chunk checksums, so a chunk
    changed on disk together with its checksum still shows up here."""
    needed = [p for pair in stored_image_sets(f) for p in (f"checksums/{pair[0]}", pair[1])]
    lost = [p for p in needed if not isinstance(f.get(p), h5py.Dataset)]
    if lost:
        report.problems.append(
            f"the content checksum cannot be recomputed without /{', /'.join(lost)}"
        )
        return
    try:
        digest = content_checksum(f)
    except (KeyError, AttributeError, TypeError, ValueError, OSError) as exc:
        report.problems.append(
            f"the content checksum cannot be recomputed ({type(exc).__name__}: {exc})"
        )
        return
    if digest != attrs.get("content_sha256"):
        report.problems.append(
            "content checksum in the attributes does not match the stored "
            "chunk checksums, factors and evaluation indices"
        )
