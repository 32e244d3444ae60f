"""A Ray sweep's checkpoint deliveries, kept on the driver's disk as well as in its memory.

Each run of a Ray task sends its folder to the driver's ``Mailbox`` actor at every checkpoint
(``benchmark.sweep.execute.Courier``). Held only in the actor's memory, a start whose driver was
killed (SIGKILL, a reboot) lost them with it, and with them every epoch its tasks trained. So the
mailbox also writes each task's latest delivery into the sweep folder, as
``SWEEP/.deliveries/<first run id>.tar`` (atomically: a ``.partial`` file, fsynced, renamed), one
file per task, the runs of an ensemble together. The file is removed once the task's runs are
unpacked into ``runs/`` (the task returned, or the driver kept what it sent); what a killed driver
left is unpacked by the next start (``adopt_kept``) under the rules of ``unpack_delivery``: never
over a finished folder nor over a checkpoint as far along or further.

A file is an uncompressed tar: ``delivery.json`` (format, and each run's step, size and sha256),
then ``<id>.tar`` per run (``execute.pack``'s tar of its folder and log). Local sweeps never write
here; the folder is hidden, and nothing that reads a sweep folder (``bench report``, the checks
that a folder is a sweep's) looks at it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import tarfile
import warnings
from collections.abc import Collection
from pathlib import Path

from benchmark.files import PARTIAL, read_regular_bytes, write_bytes_atomic
from benchmark.sweep.execute import unpack_delivery
from spritegen.errors import SpritegenWarning, counted

#: The hidden folder of a sweep folder holding the kept deliveries.
DELIVERIES = ".deliveries"
SUFFIX = ".tar"
HEADER = "delivery.json"
FORMAT = 1

#: What a task's runs last sent: run id -> (optimiser step of its checkpoint, ``pack``'s tar).
Held = dict[str, tuple[int, bytes]]


def deliveries_dir(sweep_dir: Path) -> Path:
    """Where a sweep folder keeps its Ray deliveries."""
    return Path(sweep_dir) / DELIVERIES


def place(folder: Path) -> tuple[str, int, int]:
    """(host name, device, inode) of ``folder``: equal only where it is the same folder on the
    same machine. The mailbox keeps deliveries on disk only where its place of the sweep folder
    is the driver's (not with Ray Client, where the actor runs on the cluster's head, nor on a
    node reached by the actor's soft affinity after the driver's node was lost)."""
    st = os.stat(folder)
    return socket.gethostname(), st.st_dev, st.st_ino


def encode(held: Held) -> bytes:
    """One file of the runs' deliveries (see the module's doc)."""
    header = {
        "format": FORMAT,
        "runs": {
            run_id: {"step": step, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for run_id, (step, data) in held.items()
        },
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [(HEADER, json.dumps(header).encode())] + [
            (f"{run_id}.tar", packed) for run_id, (_, packed) in held.items()
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _header(tar: tarfile.TarFile) -> dict[str, dict]:
    """The runs ``delivery.json`` lists, checked to be what ``encode`` writes."""
    member = tar.next()
    if member is None or member.name != HEADER:
        raise ValueError(f"it does not begin with {HEADER}")
    fh = tar.extractfile(member)
    if fh is None:
        raise ValueError(f"its {HEADER} is not a file")
    header = json.loads(fh.read())
    runs = header.get("runs") if isinstance(header, dict) else None
    if header.get("format") != FORMAT or not isinstance(runs, dict):
        raise ValueError(f"its {HEADER} is not one of format {FORMAT}")
    return runs


def decode(data: bytes) -> Held:
    """The runs' deliveries of one file; ValueError when it is cut short or altered."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            runs = _header(tar)
            held: Held = {}
            for run_id, about in runs.items():
                fh = tar.extractfile(f"{run_id}.tar")
                packed = fh.read() if fh is not None else b""
                if len(packed) != about["bytes"] or (
                    hashlib.sha256(packed).hexdigest() != about["sha256"]
                ):
                    raise ValueError(f"run {run_id}'s folder is cut short or altered")
                held[run_id] = (int(about["step"]), packed)
    except (tarfile.TarError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ValueError(f"{type(exc).__name__}: {exc}") from None
    return held


def write_kept(keep: Path, key: str, held: Held) -> Path:
    """Keep ``held`` (a task's runs, ``key`` its first run's id) on disk, replacing the file the
    task kept before; atomic and fsynced, so a killed driver leaves the old file or the new one."""
    keep.mkdir(exist_ok=True)  # not its parents: a sweep folder deleted meanwhile stays deleted
    path = keep / f"{key}{SUFFIX}"
    write_bytes_atomic(path, encode(held), fsync=True)
    return path


def remove_kept(keep: Path, key: str) -> None:
    (keep / f"{key}{SUFFIX}").unlink(missing_ok=True)


def _kept_files(sweep_dir: Path) -> list[Path]:
    keep = deliveries_dir(sweep_dir)
    if not keep.is_dir():
        return []
    return sorted(p for p in keep.iterdir() if p.name.endswith(SUFFIX) and p.is_file())


def _ids_in(path: Path) -> list[str]:
    """The runs a kept file holds, from its header alone; none when it cannot be read."""
    try:
        with tarfile.open(path, mode="r:") as tar:
            return list(_header(tar))
    except Exception:
        return []


def kept_runs(sweep_dir: Path, run_ids: Collection[str]) -> list[str]:
    """Those of ``run_ids`` that a kept delivery holds (for ``--dry-run``: nothing is changed)."""
    found = {i for path in _kept_files(sweep_dir) for i in _ids_in(path)}
    return [i for i in run_ids if i in found]


def adopt_kept(sweep_dir: Path, run_ids: Collection[str] | None = None) -> list[tuple[str, int]]:
    """Unpack into ``runs/`` the deliveries a killed driver left (each under ``unpack_delivery``'s
    rules), then delete them; (run id, step) of each run so resumed. Only files whose runs are
    all among ``run_ids`` (all files when None): another part of the sweep (``--only``) may be
    training on another machine now. An unreadable file is deleted with a one-line warning: its
    runs resume from what ``runs/`` holds. The hidden folder goes when it is left empty."""
    keep = deliveries_dir(sweep_dir)
    if not keep.is_dir():
        return []
    wanted = None if run_ids is None else set(run_ids)
    resumed = []
    for path in _kept_files(sweep_dir):
        if wanted is not None and not set(_ids_in(path)) <= wanted:
            continue  # unreadable files (no ids) are <= anything: dealt with below
        try:
            held = decode(read_regular_bytes(path))
        except (ValueError, OSError) as exc:
            warnings.warn(
                f"{path}: a Ray delivery kept from an earlier start cannot be read ({exc}); "
                "deleted, its runs resume from what runs/ holds",
                SpritegenWarning,
                stacklevel=2,
            )
            path.unlink(missing_ok=True)
            continue
        for run_id, (step, packed) in held.items():
            if unpack_delivery(run_id, step, packed, Path(sweep_dir) / "runs"):
                resumed.append((run_id, step))
        path.unlink()
    for path in keep.glob(f"*{SUFFIX}{PARTIAL}"):  # a write a killed driver's mailbox left
        if wanted is None or path.name.removesuffix(SUFFIX + PARTIAL) in wanted:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        keep.rmdir()  # only when empty
    return resumed


def describe_adopted(resumed: list[tuple[str, int]]) -> str:
    """The line a start prints for the runs ``adopt_kept`` resumed."""
    return (
        f"kept: {counted(len(resumed), 'run')} resume from the checkpoint their Ray task last "
        "sent (the sweep's driver stopped before it unpacked them)"
    )
