"""Check a dataset file against itself and against the renderer.

Three independent checks, each reporting *where* a problem is: every stored chunk's checksum
(corruption on disk shows up as a chunk and its row range), the whole-content checksum in the
attributes, and a re-render of a random sample of stored factor vectors compared pixel by pixel
(a renderer or library change shows up as mismatching rows).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spritegen.datafile import open_dataset, read_attrs
from spritegen.evalsets import IMAGE_SET_PATHS, INDEX_PATHS


@dataclass
class VerifyReport:
    path: str
    problems: list[str] = field(default_factory=list)
    chunks_checked: int = 0
    images_rerendered: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_chunks(f, images_path: str, report: VerifyReport) -> None:
    dset = f[images_path]
    expected = f[f"checksums/{images_path}"][()]
    rows_per_chunk = dset.chunks[0]
    row_bytes = int(np.prod(dset.shape[1:]))
    gzip = dset.compression == "gzip"
    for c in range(expected.shape[0]):
        start = c * rows_per_chunk
        stop = min(start + rows_per_chunk, dset.shape[0])
        where = f"/{images_path} rows {start}..{stop - 1} (chunk {c})"
        try:
            _, stored = dset.id.read_direct_chunk((start, 0, 0, 0))
            raw = zlib.decompress(stored) if gzip else stored
        except Exception as exc:  # zlib.error, KeyError (missing chunk), OSError
            report.problems.append(f"{where}: unreadable ({type(exc).__name__}: {exc})")
            continue
        digest = hashlib.sha256(raw[: (stop - start) * row_bytes]).digest()
        if digest != expected[c].tobytes():
            report.problems.append(f"{where}: checksum mismatch (data changed since the build)")
        report.chunks_checked += 1


def verify(
    path: str | Path, sample: int = 256, seed: int = 0, progress: bool = False
) -> VerifyReport:
    """Verify checksums and re-render ``sample`` random stored images per image set."""
    from spritegen.oracle import Oracle

    report = VerifyReport(str(path))
    oracle = Oracle.from_file(path)
    rng = np.random.default_rng(seed)
    with open_dataset(path) as f:
        attrs = read_attrs(f)
        for images_path, factors_path in _image_sets(f):
            _check_chunks(f, images_path, report)
            n = f[images_path].shape[0]
            if sample and n:
                rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
                try:
                    stored = f[images_path][rows]
                except Exception as exc:
                    report.problems.append(f"/{images_path}: sample unreadable ({exc})")
                    continue
                fresh = oracle.render(f[factors_path][rows])
                bad = np.flatnonzero((fresh != stored).reshape(len(rows), -1).any(axis=1))
                report.images_rerendered += len(rows)
                if len(bad):
                    diff = np.abs(fresh[bad].astype(int) - stored[bad].astype(int)).max()
                    report.problems.append(
                        f"/{images_path}: {len(bad)} of {len(rows)} re-rendered images differ "
                        f"(rows {', '.join(map(str, rows[bad][:10]))}"
                        f"{'...' if len(bad) > 10 else ''};"
                        f" max pixel difference {diff}); renderer recorded: "
                        f"{attrs.get('renderer_info')}"
                    )
        content_ok = content_checksum(f) == attrs.get("content_sha256")
    if not content_ok:
        report.problems.append(
            "content checksum in the attributes does not match the stored "
            "chunk checksums, factors and evaluation indices"
        )
    oracle.close()
    return report


def content_checksum(f) -> str:
    """SHA-256 over every image set's path, chunk checksums and factors, then the evaluation
    indices, in build order: the file's ``content_sha256``. The build and ``verify`` both call
    this, so the definition exists once."""
    h = hashlib.sha256()
    for images_path, factors_path in _image_sets(f):
        h.update(images_path.encode())
        h.update(f[f"checksums/{images_path}"][()].tobytes())
        h.update(f[factors_path][()].astype(np.float32).tobytes())
    for path in (p for p in INDEX_PATHS if p in f):
        h.update(path.encode())
        h.update(f[path][()].tobytes())
    return h.hexdigest()


def _image_sets(f) -> list[tuple[str, str]]:
    """(images, factors) paths of the image sets present, in the order the build wrote them."""
    return [(p, p.replace("images", "factors")) for p in IMAGE_SET_PATHS if p in f]
