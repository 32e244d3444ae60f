"""Build a dataset file: plan, render in parallel, assemble, publish.

How the guarantees are kept:

* **Deterministic.** All factor vectors are planned up front from the seed (``evalsets``); workers
  render fixed chunks of that plan and compress them; the file is then assembled by one process
  writing the chunks in a fixed order. The bytes cannot depend on the number of workers or on the
  order in which chunks finish.
* **Resumable.** Each rendered chunk is saved atomically in ``OUT.parts/`` as soon as it is done.
  Running the same command again skips the chunks already there (after checking the parts belong
  to the same spec, package and renderer version) and assembles the same file.
  Saved chunks are checked against their stored hash before assembly; a bad one is re-rendered.
* **Atomic.** The file is assembled as ``OUT.partial`` and renamed onto ``OUT`` only once it is
  complete and flagged ``complete=True``; a finished ``OUT`` is never overwritten without ``force``.
* **Guarded.** The size is estimated and checked against the free disk before any work; an
  exclusive lock (``OUT.lock``) keeps two builds of one file apart; file-system failures (disk
  full, read-only folder) end in one line. docs/reliability.md lists what survives what.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spritegen
from spritegen import diskspace
from spritegen.atomic import (
    PARTIAL_SUFFIX,
    as_created,
    atomic_path,
    exclusive_lock,
    partial_path,
    write_bytes_atomic,
)
from spritegen.datafile import FORMAT_NAME, FORMAT_VERSION, metadata_tables
from spritegen.errors import (
    BuildError,
    SpecError,
    SpritegenError,
    check_flag,
    check_output_path,
    counted,
    quote,
)
from spritegen.evalsets import BuildPlan, plan_build
from spritegen.factors import FACTOR_NAMES
from spritegen.spec import EVAL_PRESETS, DatasetSpec, EvalSizes

PARTS_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ChunkTask:
    """Render rows [start, stop) of image set ``set_index`` into chunk ``chunk_index``."""

    set_index: int
    chunk_index: int
    factors: np.ndarray  # (rows, K) float32
    renderer: str
    image_size: int
    coloured: bool
    fixed: tuple[float, ...]
    chunk_images: int
    compression: str
    compression_level: int

    @property
    def name(self) -> str:
        return f"{self.set_index:02d}-{self.chunk_index:07d}.chunk"


_RENDERERS: dict[tuple, object] = {}


def _renderer_for(task: ChunkTask):
    """One renderer per process and configuration, reused for every chunk it renders."""
    from spritegen.render import make_renderer

    key = (task.renderer, task.image_size, task.coloured)
    if key not in _RENDERERS:
        _RENDERERS[key] = make_renderer(task.renderer, task.image_size, task.coloured)
    return _RENDERERS[key]


def render_chunk(task: ChunkTask) -> tuple[str, bytes, bytes]:
    """Render and compress one chunk: returns (name, sha256 of the raw rows, stored bytes).

    The stored bytes are exactly what HDF5's deflate filter would write for this chunk, so the
    assembler can write them with ``write_direct_chunk`` without recompressing.
    """
    from spritegen.factors import FactorSpace

    renderer = _renderer_for(task)
    space = FactorSpace(task.factors.shape[1], task.fixed)
    images = renderer.render(space.expand(task.factors))
    raw = images.tobytes()
    digest = hashlib.sha256(raw).digest()
    full = task.chunk_images * images[0].nbytes
    if len(raw) < full:  # HDF5 stores edge chunks whole; pad with zeros as it would
        raw = raw + bytes(full - len(raw))
    stored = zlib.compress(raw, task.compression_level) if task.compression == "gzip" else raw
    return task.name, digest, stored


def _library_versions() -> dict[str, str]:
    import h5py

    return {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "spritegen": spritegen.__version__,
    }


def _tasks(spec: DatasetSpec, plan: BuildPlan) -> list[ChunkTask]:
    tasks = []
    space = spec.space
    for s, image_set in enumerate(plan.image_sets):
        for c, start in enumerate(range(0, len(image_set.factors), spec.chunk_images)):
            tasks.append(
                ChunkTask(
                    s,
                    c,
                    image_set.factors[start : start + spec.chunk_images],
                    spec.renderer,
                    spec.image_size,
                    space.coloured,
                    space.fixed,
                    spec.chunk_images,
                    spec.compression,
                    spec.compression_level,
                )
            )
    return tasks


def _prepare_parts(parts: Path, manifest: dict, force: bool) -> None:
    """Create the parts folder, or check that an existing one belongs to this very build."""
    path = parts / PARTS_MANIFEST
    if parts.exists() and not path.exists():  # empty: a build killed before its manifest
        write_bytes_atomic(path, json.dumps(manifest, sort_keys=True).encode(), fsync=False)
        return
    if parts.exists():
        try:
            found = json.loads(path.read_text())
        except (OSError, ValueError):
            found = None
        if found == manifest:  # the same deterministic build: its chunks are reusable as they are
            return
        if not force:
            raise SpecError(
                f"{parts} holds an unfinished build of a different spec or spritegen version; "
                "run with --force to discard it, or build to another --out"
            )
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    write_bytes_atomic(path, json.dumps(manifest, sort_keys=True).encode(), fsync=False)


#: Stored (gzip level 1) bytes per raw image byte, measured on 64x64 training images of each
#: renderer and factor count (docs/reliability.md); combinations not measured use the renderer's
#: largest ratio. The estimate adds ``ESTIMATE_MARGIN`` on top, so it errs on the large side.
GZIP_RATIO: dict[tuple[str, int], float] = {
    ("2d", 1): 0.0106,
    ("2d", 2): 0.0116,
    ("2d", 3): 0.0121,
    ("2d", 4): 0.0324,
    ("2d", 5): 0.0475,
    ("2d", 6): 0.0280,
    ("3d", 5): 0.0360,
    ("3d", 6): 0.0486,
    ("3d", 7): 0.0443,
}
ESTIMATE_MARGIN = 1.1


def _gzip_ratio(renderer: str, factors: int) -> float:
    if (renderer, factors) in GZIP_RATIO:
        return GZIP_RATIO[(renderer, factors)]
    return max((r for (kind, _), r in GZIP_RATIO.items() if kind == renderer), default=1.0)


@dataclass(frozen=True)
class Estimate:
    """What a build will render and roughly how large its file will be, known before any work."""

    training_images: int
    evaluation_images: int
    file_bytes: int
    #: The evaluation presets that render fewer images than this build's, largest first.
    fewer_presets: tuple[str, ...] = ()

    @property
    def total_images(self) -> int:
        return self.training_images + self.evaluation_images

    def line(self, out: Path) -> str:
        text = (
            f"{out}: will render {counted(self.total_images, 'image')} "
            f"({self.training_images:,} training"
            f" + {self.evaluation_images:,} evaluation), file about {_size(self.file_bytes)}"
        )
        if self.evaluation_images > 10 * self.training_images and self.fewer_presets:
            *rest, last = self.fewer_presets
            names = f"{', '.join(rest)} or {last}" if rest else last
            text += f"; the evaluation sets dominate: --eval-preset {names} renders fewer"
        return text


def estimate(spec: DatasetSpec) -> Estimate:
    """Images to render and an approximate file size (upper end), computed from the spec alone."""
    evaluation = spec.evaluation.total_images
    total = spec.n + evaluation
    raw = spec.image_size * spec.image_size * spec.channels
    ratio = _gzip_ratio(spec.renderer, spec.factors) if spec.compression == "gzip" else 1.0
    per_image = raw * ratio * ESTIMATE_MARGIN + 4 * spec.factors  # pixels, float32 factors
    # Only presets that render fewer: with tiny, "quick, tiny or none" advised more, or the same.
    fewer = [name for name in EVAL_PRESETS if EvalSizes.preset(name).total_images < evaluation]
    fewer.sort(key=lambda name: -EvalSizes.preset(name).total_images)
    return Estimate(spec.n, evaluation, int(total * per_image) + 100_000, tuple(fewer))


def _size(nbytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError  # pragma: no cover


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    except OSError:
        return 0


def out_path(out: str | Path) -> Path:
    """``out`` as the path of the file to build, refused at once if its text cannot name one.

    Checked on the text as given: ``Path`` turns ``""`` into ``.`` and drops a trailing ``/``,
    so ``--out ''`` would name the current folder and ``--out results/`` a file ``results``.
    What is on the disk at that path is checked by ``_check_nothing_in_the_way``, on the path
    as it reads once its missing folders are made (``spritegen.atomic.as_created``).
    """
    text = str(out)
    if isinstance(out, str) and not out:
        raise SpecError("--out: got ''; allowed: the path of the file to build, such as data.h5")
    check_output_path("--out", text)
    separators = tuple(sep for sep in (os.sep, os.altsep) if sep)
    if isinstance(out, str) and out.endswith(separators):
        raise SpecError(
            f"--out {quote(text)} ends in {quote(out[-1])}, so it names a folder; allowed: the "
            f"path of the file to build, such as {quote(text + 'data.h5')}"
        )
    return as_created(out)


def _check_nothing_in_the_way(out: Path, parts: Path) -> None:
    """Refuse before any work when a path the build writes is taken by something not its own.

    ``OUT`` must be a regular file if it exists (``--force`` would rename over a folder or a
    device such as /dev/null); ``OUT.parts`` must be a folder of saved chunks (a file there is
    the user's, never deleted, even with --force); ``OUT.partial`` and ``OUT.lock`` must be
    files if they exist (a folder there would otherwise fail deep inside HDF5 or ``open``).
    """
    if out.is_dir():
        raise SpecError(
            f"--out {quote(str(out))} is a folder; allowed: the path of the file to build, such "
            f"as {quote(str(out / 'data.h5'))}"
        )
    if out.exists() and not out.is_file():
        raise SpecError(
            f"--out {quote(str(out))} exists and is not a regular file (a device, pipe or "
            "socket); choose another --out"
        )
    if parts.exists() and not parts.is_dir():
        raise SpecError(
            f"{parts} is not a parts folder of a build (it is a file); move or delete it, or "
            "build to another --out"
        )
    if _foreign_parts(parts):
        raise SpecError(
            f"{parts} is in the way: it holds files but no {PARTS_MANIFEST}, so it is not the "
            "parts folder of a build; move or delete it, or build to another --out"
        )
    for path in (partial_path(out), _lock_path(out)):
        if path.exists() and not path.is_file():
            raise SpecError(
                f"{path} is in the way: the build writes a file there, but it is a folder; move "
                "or delete it, or build to another --out"
            )
    _check_own_file(partial_path(out), _is_own_partial, "the file it assembles")
    _check_own_file(_lock_path(out), _is_own_lock, "its lock (a process id)")


#: The first bytes of an HDF5 file whose superblock is at offset 0, as a build writes it.
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_own_partial(head: bytes, size: int) -> bool:
    """A build's ``OUT.partial`` is an HDF5 file from its first write (the superblock comes
    first), or empty when the build was killed as it created it."""
    return size == 0 or head.startswith(HDF5_SIGNATURE)


def _is_own_lock(head: bytes, size: int) -> bool:
    """A build's ``OUT.lock`` holds its process id and a newline, or nothing (killed between
    creating and writing it)."""
    return re.fullmatch(rb"[0-9]*\n?", head) is not None and size <= len(head)


def _check_own_file(path: Path, own: Callable[[bytes, int], bool], what: str) -> None:
    """Refuse a file at ``path`` that the build did not leave there: the build overwrites
    ``OUT.partial`` and ``OUT.lock`` and then removes or renames them, which silently destroyed
    a user's ``data.h5.partial`` or ``data.h5.lock``. Never replaced, not even with --force."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        head = fh.read(32)
    if not own(head, path.stat().st_size):
        raise SpecError(
            f"{path} is in the way: the build keeps {what} under that name, but this file is not "
            f"one a build left (it starts with {quote(head[:16])}); move or rename it, or build "
            "to another --out"
        )


def _check_replaceable(out: Path) -> None:
    """An existing ``OUT`` may only be a dataset (any HDF5 file: an older build, a damaged one)
    or empty; anything else is the user's and is never replaced, not even with ``--force``:
    ``spritegen build spec.yaml --out spec.yaml --force`` replaced the spec with the dataset
    built from it, and ``--out notes.txt --force`` the notes."""
    import h5py

    if not out.is_file() or out.stat().st_size == 0 or h5py.is_hdf5(out):
        return
    with open(out, "rb") as fh:
        head = fh.read(8)
    raise SpecError(
        f"--out {quote(str(out))} exists and is not an HDF5 file (it starts with {quote(head)}); "
        "--force replaces only a dataset: choose another --out, or remove the file"
    )


def _foreign_parts(parts: Path) -> bool:
    """Whether ``OUT.parts`` is a folder that no build made: a build writes its manifest before
    any chunk, so files without one are the user's (``--force`` deleted them whole, and without
    it they were called "an unfinished build of a different spec"). An empty folder, or one with
    only the manifest's ``.partial``, is a build killed between the two, and is taken over."""
    manifest = parts / PARTS_MANIFEST
    if not parts.is_dir() or manifest.exists():
        return False
    return any(p.name != partial_path(manifest).name for p in parts.iterdir())


def _check_writable(out: Path) -> None:
    """Refuse an output folder that cannot take files, before the free-space check reads its
    (zero) free space as a full disk: one on a virtual file system (/proc, /sys: no blocks),
    read-only, or not writable by this user."""
    folder = _existing_ancestor(out.parent)
    if not folder.is_dir():  # a file on the path: named when the folders are made (ENOTDIR)
        return
    stats = os.statvfs(folder)
    if stats.f_blocks == 0:
        raise SpecError(
            f"--out {quote(str(out))}: {folder} is on a virtual file system that stores no "
            "files (like /proc or /sys); choose another --out"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        code = errno.EROFS if stats.f_flag & os.ST_RDONLY else errno.EACCES
        raise SpecError(
            f"--out {quote(str(out))}: cannot write in {folder}: {os.strerror(code)}; choose a "
            "folder you can write to"
        )


def _check_free_space(est: Estimate, out: Path, parts: Path) -> None:
    """Refuse up front when the disk cannot hold the saved chunks and the assembled file."""
    folder = _existing_ancestor(out.parent)
    free = shutil.disk_usage(folder).free
    saved = _folder_bytes(parts) if parts.is_dir() else 0
    needed = max(0, 2 * est.file_bytes - saved)
    if free < needed:
        raise SpecError(
            f"not enough free disk space in {folder}: this build needs about {_size(needed)} "
            f"(its chunks are saved, then assembled into a {_size(est.file_bytes)} file), "
            f"{_size(free)} free; free space, choose another --out, or render fewer images "
            "(--n, --eval-preset)"
        )


def _is_disk_full(exc: OSError) -> bool:
    text = str(exc)
    return (
        exc.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "errno = 28" in text
    )


def _out_of_space(out: Path, parts: Path, need: str = "") -> BuildError:
    kept = len(list(parts.glob("*.chunk"))) if parts.is_dir() else 0
    return BuildError(
        f"out of disk space in {out.parent.absolute()} while building {out.name}"
        f"{': ' + need if need else ''}; free some space and run the same command again to "
        f"resume ({kept} finished chunks are kept in {parts.name}), or build to another --out"
    )


@contextlib.contextmanager
def _io_errors(out: Path, parts: Path) -> Iterator[None]:
    """Turn the build's file-system failures into one line naming the folder and the cause."""
    try:
        yield
    except OSError as exc:
        folder = out.parent.absolute()
        if _is_disk_full(exc):
            raise _out_of_space(out, parts) from None
        if exc.errno is None:
            raise
        where = quote(str(exc.filename)) if exc.filename else str(folder)
        if exc.errno in (errno.EEXIST, errno.ENOTDIR):
            raise SpecError(
                f"--out {quote(str(out))}: a folder on its path is a file ({where}); "
                "allowed: a file path whose parent folders are folders or can be created"
            ) from None
        advice = (
            "choose a folder you can write to"
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            else "choose another --out"
        )
        raise SpecError(
            f"--out {quote(str(out))}: cannot write {where}: {exc.strerror}; {advice}"
        ) from None


def _lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


@contextlib.contextmanager
def build_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT.lock`` (``spritegen.atomic.exclusive_lock``) for a whole build of ``out``: a
    second build of the same file fails at once with a line naming the process that holds it,
    and a killed build never blocks the next one."""

    def busy(holder: str) -> SpritegenError:
        return SpritegenError(
            f"{out} is being built by another process (pid {holder}); wait for it to "
            "finish, or build to another --out"
        )

    with exclusive_lock(_lock_path(out), busy):
        yield


def _check_saved_chunks(spec: DatasetSpec, tasks: list[ChunkTask], parts: Path) -> list[str]:
    """Names of saved chunks that fail their stored hash (they are deleted, to be re-rendered).

    A saved chunk is ``sha256(raw rows) + stored bytes``; it is inflated and hashed again, so a
    chunk changed on disk between a killed build and its resume is never assembled into a file
    flagged complete. zlib and hashlib release the GIL, so threads check chunks in parallel.
    """
    from concurrent.futures import ThreadPoolExecutor

    row_bytes = spec.image_size * spec.image_size * spec.channels
    full = spec.chunk_images * row_bytes

    def bad(task: ChunkTask) -> bool:
        path = parts / task.name
        try:
            blob = path.read_bytes()
            stored = blob[32:]
            raw = zlib.decompress(stored) if spec.compression == "gzip" else stored
        except (OSError, zlib.error):
            return True
        rows = len(task.factors) * row_bytes
        return len(raw) != full or hashlib.sha256(raw[:rows]).digest() != blob[:32]

    saved = [t for t in tasks if (parts / t.name).exists()]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        flags = list(pool.map(bad, saved))
    names = [t.name for t, b in zip(saved, flags) if b]
    for name in names:
        (parts / name).unlink(missing_ok=True)
    return names


def _check_build_args(spec: object, workers: object) -> int | None:
    """Refuse what ``build`` cannot use before anything is written: a spec that is not a
    ``DatasetSpec`` (a YAML path or a dict was an AttributeError from the estimate), and
    ``workers`` that is not a whole number >= 1 (1.5 failed inside multiprocessing and left
    ``OUT.parts`` behind; 0 and -2 were quietly taken as 1). ``workers`` comes back an int."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(
            f"build takes a DatasetSpec (spritegen.spec.load_spec(path) or default_spec(K)), "
            f"got {type(spec).__name__}"
        )
    if workers is None:
        return None
    if isinstance(workers, np.integer):
        workers = int(workers)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise SpecError(
            f"workers must be an integer >= 1 (or None: one per core), got {quote(workers)}"
        )
    return workers


def build(
    spec: DatasetSpec,
    out: str | Path,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    executor: Callable[[Callable, Iterable], Iterable] | None = None,
    announce: Callable[[str], None] | None = None,
) -> Path:
    """Render ``spec`` into the HDF5 file ``out`` and return its path.

    ``executor(fn, items)``, if given, maps ``render_chunk`` over the chunk tasks elsewhere (e.g.
    ``spritegen.executors.RayExecutor(...).map_ordered``); without it ``workers`` local spawned
    processes render (one renders in this process). Either way the bytes are the same.
    ``announce``, if given, receives one-line notes: the up-front estimate, re-rendered chunks.
    Before any work the free disk space is checked against the estimate; while it runs the build
    holds ``OUT.lock`` so that two builds of one file cannot interleave.
    """
    workers = _check_build_args(spec, workers)
    # read by truth value, force="no" replaced an existing dataset and discarded saved chunks
    force, progress = check_flag("force", force), check_flag("progress", progress)
    out = out_path(out)
    parts = out.with_name(out.name + ".parts")
    with _io_errors(out, parts):
        _check_nothing_in_the_way(out, parts)
        _check_replaceable(out)
        if out.exists() and not force:
            raise SpecError(f"{out} already exists; pass --force to replace it")
        _check_writable(out)
        est = estimate(spec)
        if announce:
            announce(est.line(out))
        _check_free_space(est, out, parts)
        out.parent.mkdir(parents=True, exist_ok=True)
        with build_lock(out):
            if out.exists() and not force:  # another build finished it while we waited
                raise SpecError(f"{out} already exists; pass --force to replace it")
            _build_locked(spec, out, parts, workers, force, progress, executor, announce)
    return out


def _build_locked(
    spec: DatasetSpec,
    out: Path,
    parts: Path,
    workers: int | None,
    force: bool,
    progress: bool,
    executor: Callable[[Callable, Iterable], Iterable] | None,
    announce: Callable[[str], None] | None,
) -> None:
    from tqdm import tqdm

    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    plan = plan_build(spec)
    tasks = _tasks(spec, plan)
    from spritegen.render import renderer_version

    manifest = {
        "spec": spec.to_yaml(),
        "spritegen": spritegen.__version__,
        "format_version": FORMAT_VERSION,
        "renderer_version": renderer_version(spec.renderer),
        "num_chunks": len(tasks),
    }
    _prepare_parts(parts, manifest, force)
    bad = _check_saved_chunks(spec, tasks, parts)
    if bad and announce:
        announce(
            f"{parts}: {len(bad)} saved chunk(s) failed their checksum ({', '.join(bad[:3])}"
            f"{', ...' if len(bad) > 3 else ''}); rendering them again"
        )
    todo = [t for t in tasks if not (parts / t.name).exists()]
    done_images = plan.total_images - sum(len(t.factors) for t in todo)
    with tqdm(
        total=plan.total_images,
        initial=done_images,
        unit="img",
        desc=f"render {out.name}",
        disable=not progress,
        smoothing=0.05,
    ) as bar:
        rows = {t.name: len(t.factors) for t in todo}
        local = None
        if executor is None:
            from spritegen.executors import LocalExecutor

            local = LocalExecutor(workers=min(workers, max(1, len(todo))))
            executor = local.map_ordered
        try:
            for name, digest, stored in executor(render_chunk, todo):
                write_bytes_atomic(parts / name, digest + stored, fsync=False)
                bar.update(rows[name])
        finally:
            if local is not None:
                local.close()
    renderer_info = _renderer_for(tasks[0]).info() if tasks else {}
    with atomic_path(out) as partial:  # fsynced, then renamed; removed on any failure
        _assemble(spec, plan, tasks, parts, partial, renderer_info, progress)
        diskspace.release_unused(partial)
    shutil.rmtree(parts)


def _assembly_bytes(plan: BuildPlan, tasks: list[ChunkTask], parts: Path) -> int:
    """A little more than the assembled file will take: its saved chunks' payload, its factor
    tables and arrays at their raw size (gzip shrinks them, or grows them by a few bytes), and
    room for HDF5's own structures (chunk indexes, grown with the payload; object headers, with
    the image sets)."""
    payload = sum((parts / t.name).stat().st_size for t in tasks)
    tables = sum(s.factors.size * 4 for s in plan.image_sets)
    arrays = sum(a.nbytes for a in plan.arrays.values())
    structures = payload // 100 + (64 << 10) + (16 << 10) * len(plan.image_sets)
    return payload + tables + arrays + structures


def _claim_space(partial: Path, nbytes: int, parts: Path) -> None:
    """Claim the file's disk before HDF5 writes a chunk: a full disk met inside HDF5 can crash
    the process (``spritegen.diskspace``), met here it is the usual one-line error."""
    try:
        diskspace.reserve(partial, nbytes)
    except OSError as exc:
        if not _is_disk_full(exc):
            raise
        free = shutil.disk_usage(partial.parent).free
        out = partial.with_name(partial.name.removesuffix(PARTIAL_SUFFIX))
        need = f"assembling it needs about {_size(nbytes)}, {_size(free)} free"
        raise _out_of_space(out, parts, need) from None


def _string_array(values: Iterable[str]):
    import h5py

    return np.array(list(values), dtype=h5py.string_dtype())


def _assemble(
    spec: DatasetSpec,
    plan: BuildPlan,
    tasks: list[ChunkTask],
    parts: Path,
    partial: Path,
    renderer_info: dict[str, str],
    progress: bool,
) -> None:
    """Write the file in one fixed order from the saved chunks; flag it complete last."""
    import h5py
    from tqdm import tqdm

    H = W = spec.image_size
    C = spec.channels
    K = spec.factors
    by_set: dict[int, list[ChunkTask]] = {}
    for t in tasks:
        by_set.setdefault(t.set_index, []).append(t)
    with h5py.File(partial, "w", libver="earliest", track_order=False) as f:
        _claim_space(partial, _assembly_bytes(plan, tasks, parts), parts)
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["complete"] = False
        filters = (
            {"compression": "gzip", "compression_opts": spec.compression_level}
            if spec.compression == "gzip"
            else {}
        )
        for s, image_set in enumerate(tqdm(plan.image_sets, desc="assemble", disable=not progress)):
            M = len(image_set.factors)
            dset = f.create_dataset(
                image_set.images_path,
                shape=(M, H, W, C),
                dtype=np.uint8,
                chunks=(min(spec.chunk_images, M), H, W, C),
                track_times=False,
                **filters,
            )
            dset.attrs["dims"] = "index, height, width, channel"
            digests = np.zeros((len(by_set.get(s, [])), 32), dtype=np.uint8)
            for t in by_set.get(s, []):
                blob = (parts / t.name).read_bytes()
                if dset.chunks[0] == spec.chunk_images:
                    dset.id.write_direct_chunk(
                        (t.chunk_index * spec.chunk_images, 0, 0, 0), blob[32:], filter_mask=0
                    )
                else:  # a set smaller than one chunk: its single chunk is smaller too
                    raw = zlib.decompress(blob[32:]) if spec.compression == "gzip" else blob[32:]
                    dset[:] = np.frombuffer(raw, np.uint8)[: dset.size].reshape(dset.shape)
                digests[t.chunk_index] = np.frombuffer(blob[:32], np.uint8)
            f.create_dataset(f"checksums/{image_set.images_path}", data=digests, track_times=False)
            fac = f.create_dataset(
                image_set.factors_path,
                data=image_set.factors.astype(np.float32),
                chunks=(min(max(M, 1), 65536), K),
                track_times=False,
                **filters,
            )
            fac.attrs["names"] = _string_array(FACTOR_NAMES[:K])
        for path, array in plan.arrays.items():
            f.create_dataset(path, data=array, track_times=False)
        for group, attrs in plan.group_attrs.items():
            for key, value in attrs.items():
                f[group].attrs[key] = value
        _write_metadata(f, spec)
        from spritegen.verify import content_checksum

        digest = content_checksum(f)  # read back from the file: one definition, in verify
        f.attrs["package_version"] = spritegen.__version__
        f.attrs["spec"] = spec.to_yaml()
        f.attrs["spec_sha256"] = spec.digest()
        f.attrs["seed"] = spec.seed
        f.attrs["renderer"] = spec.renderer
        f.attrs["renderer_info"] = json.dumps(renderer_info, sort_keys=True)
        f.attrs["library_versions"] = json.dumps(_library_versions(), sort_keys=True)
        f.attrs["num_images"] = spec.n
        f.attrs["num_factors"] = K
        f.attrs["image_shape"] = np.array([H, W, C], dtype=np.int64)
        f.attrs["content_sha256"] = digest
        f.attrs["dataset_id"] = digest[:12]
        f.attrs["complete"] = True


def _write_metadata(f, spec: DatasetSpec) -> None:
    """The /metadata tables, as ``spritegen.datafile.metadata_tables`` defines them."""
    meta = f.create_group("metadata", track_order=False)
    for table in metadata_tables(spec):
        meta.create_dataset(table.name, data=table.data)
        if table.note is not None:
            meta[table.name].attrs["note"] = table.note
