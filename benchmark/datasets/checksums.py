"""Known digests of the published files, and a streaming check against them.

The publishers do not print checksums. The HDF5 digests below are the ones TensorFlow Datasets
records for the official download URLs (``checksums.tsv`` of its ``dsprites`` and ``shapes3d``
builders); the npz digests were recorded by independent third-party loaders. None of them could
be checked here against a download (this project never downloads), so a mismatch is reported
with its source and the user decides. Opening a file never hashes it unless asked (``verify``):
hashing 256 MB costs seconds, and a re-saved copy with the same arrays is equally usable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KnownDigest:
    algorithm: str
    hexdigest: str
    size: int | None
    source: str


TFDS = "TensorFlow Datasets checksums.tsv for the official URL"
KNOWN_DIGESTS: dict[str, tuple[KnownDigest, ...]] = {
    "dsprites-hdf5": (
        KnownDigest(
            "sha256",
            "729fa22e884c9c500e1f17415d580746b4c5894fbbb780a1319bbcfa39a745bb",
            28024106,
            TFDS,
        ),
    ),
    "dsprites-npz": (
        KnownDigest(
            "md5",
            "7da33b31b13a06f4b04a70402ce90c2e",
            None,
            "third-party loader (latte), not the publisher",
        ),
        KnownDigest(
            "sha1",
            "3e0a46a9238e425f46a6ef9e9bdfd7cedb35d50f",
            None,
            "third-party loader, not the publisher",
        ),
    ),
    "3dshapes": (
        KnownDigest(
            "sha256",
            "0a0f6ed98baff276a50f3a081a7434d788da63cb135a98189b2a5b5769be1785",
            267573662,
            TFDS,
        ),
    ),
}


@dataclass(frozen=True)
class ChecksumReport:
    """``matched`` is True/False, or None when no digest is known for this kind of file."""

    matched: bool | None
    message: str


def verify_checksum(path: Path, kind: str) -> ChecksumReport:
    """Hash ``path`` (streaming, 8 MiB at a time); compare with the digests known for ``kind``."""
    known = KNOWN_DIGESTS.get(kind, ())
    if not known:
        return ChecksumReport(None, f"no published checksum is known for {kind}")
    size = path.stat().st_size
    sized = [k for k in known if k.size is not None]
    if sized and all(size != k.size for k in sized) and len(sized) == len(known):
        return ChecksumReport(
            False,
            f"{path}: {size} bytes, the published {kind} file has "
            f"{sized[0].size} bytes ({sized[0].source})",
        )
    hashes = {k.algorithm: hashlib.new(k.algorithm) for k in known}
    with open(path, "rb") as fh:
        while block := fh.read(8 * 2**20):
            for h in hashes.values():
                h.update(block)
    for k in known:
        if hashes[k.algorithm].hexdigest() == k.hexdigest:
            return ChecksumReport(True, f"{path}: {k.algorithm} matches ({k.source})")
    k = known[0]
    return ChecksumReport(
        False,
        f"{path}: {k.algorithm} {hashes[k.algorithm].hexdigest()} differs "
        f"from the published file's {k.hexdigest} ({k.source})",
    )
