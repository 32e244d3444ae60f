"""Faults during a build: kills, Ctrl-C, a rival build, a corrupted saved chunk, a full disk.

Each test runs the real ``spritegen build`` command in a process, injects the fault, and checks
what docs/reliability.md promises: the rerun gives the same bytes as an uninterrupted build, no
worker outlives its parent, and nothing but the saved chunks (kept for resume) is left behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import click
import numpy as np
import pytest
from conftest import build_small

from spritegen import diskspace
from spritegen.build import estimate
from spritegen.clitools import CliGroup, run_cli
from spritegen.spec import default_spec, with_overrides
from spritegen.verify import verify

SPRITEGEN = [sys.executable, "-m", "spritegen"]
ARGS = ["build", "--factors", "5", "--n", "12000", "--eval-preset", "tiny", "--quiet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run(out: Path, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        SPRITEGEN + ARGS + ["--out", str(out), *extra], capture_output=True, text=True, **kwargs
    )


def start(out: Path, *extra: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        SPRITEGEN + ARGS + ["--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        parents, frontier = frontier, set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                info = _stat(int(entry.name))
                if info is not None and info[1] in parents and int(entry.name) not in found:
                    frontier.add(int(entry.name))
        found |= frontier
    return found


def alive(pid: int) -> bool:
    info = _stat(pid)
    return info is not None and info[0] != "Z"


def wait_for(condition, timeout: float = 120.0, step: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def assert_no_orphans(pids: set[int]) -> None:
    assert wait_for(lambda: not any(alive(p) for p in pids), timeout=20, step=0.05), [
        p for p in pids if alive(p)
    ]


def leftovers(folder: Path, name: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != name)


def chunks(out: Path) -> list[Path]:
    parts = out.with_name(out.name + ".parts")
    return sorted(parts.glob("*.chunk")) if parts.is_dir() else []


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("reference") / "ref.h5"
    result = run(out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    return sha(out)


def kill_when(
    proc: subprocess.Popen, condition, sig: int, *, may_finish: bool = False
) -> set[int] | None:
    """Send ``sig`` once ``condition()`` holds; return the pids of the process's children.
    ``may_finish``: None when the build finished before ``condition()`` was seen to hold (a
    quiet machine builds the 51 chunks in under a second, so a late moment can be missed)."""
    seen: set[int] = set()

    def ready() -> bool:
        seen.update(descendants(proc.pid))
        return condition() or proc.poll() is not None

    assert wait_for(ready, step=0.01)
    if proc.poll() is not None and may_finish:
        return None
    assert proc.poll() is None, "the build finished before the fault could be injected"
    seen.update(descendants(proc.pid))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("moment", [0, 1, 2])
def test_sigkill_while_rendering_then_rerun_gives_identical_bytes(tmp_path, reference, moment):
    rng = np.random.default_rng(moment)
    out = tmp_path / "d.h5"
    after = int(rng.integers(1, 40))  # a random moment: after this many saved chunks
    while True:
        proc = start(out, "--workers", "2")
        saved = lambda n=after: len(chunks(out)) >= n  # noqa: E731
        pids = kill_when(proc, saved, signal.SIGKILL, may_finish=after > 1)
        if pids is not None:
            break
        assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
        out.unlink()  # the build outran the poll: again, with an earlier moment
        after //= 2
    assert pids, "the build never started its workers"
    assert_no_orphans(pids)
    assert not out.exists()
    result = run(out, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert sha(out) == reference
    assert leftovers(tmp_path, "d.h5") == []


@pytest.mark.slow
def test_sigkill_during_assembly_then_rerun_gives_identical_bytes(tmp_path, reference):
    out = tmp_path / "d.h5"
    partial = tmp_path / "d.h5.partial"
    proc = start(out, "--workers", "2")
    pids = kill_when(proc, partial.exists, signal.SIGKILL)
    assert_no_orphans(pids)
    assert not out.exists() and partial.exists()  # killed while assembling
    result = run(out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert sha(out) == reference
    assert leftovers(tmp_path, "d.h5") == []


def test_sigterm_takes_the_workers_down(tmp_path):
    out = tmp_path / "d.h5"
    proc = start(out, "--workers", "2")
    pids = kill_when(proc, lambda: len(chunks(out)) >= 2, signal.SIGTERM)
    assert pids
    assert_no_orphans(pids)


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_rerun_resumes(tmp_path, reference):
    out = tmp_path / "d.h5"
    proc = start(out, "--workers", "2", start_new_session=True)  # its own terminal group

    seen: set[int] = set()

    def ready() -> bool:
        seen.update(descendants(proc.pid))
        return len(chunks(out)) >= 3 or proc.poll() is not None

    assert wait_for(ready, step=0.01) and proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, len(chunks(out)), err)
    assert err == "spritegen: interrupted; run the same command again to resume\n"
    assert_no_orphans(seen)
    result = run(out, "--workers", "2")
    assert result.returncode == 0, result.stderr
    assert sha(out) == reference
    assert leftovers(tmp_path, "d.h5") == []


def _holds_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (so it is inside the command, past start-up)."""
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_in_verify_is_one_line_without_resume_advice(tmp_path):
    """verify has nothing to resume: one line, no blank line before it, no 'run again'."""
    data = build_small(tmp_path, 2, n=60_000, preset="none", workers=2)
    proc = subprocess.Popen(
        SPRITEGEN + ["verify", str(data), "--sample", "1000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert wait_for(lambda: _holds_open(proc.pid, data) or proc.poll() is not None, step=0.001)
    assert proc.poll() is None, "verify ended before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert (proc.returncode, err) == (130, "spritegen: interrupted\n")


@pytest.mark.parametrize(
    ("command", "resumable", "line"),
    [
        ("build", ("build",), "prog: interrupted; run the same command again to resume\n"),
        ("show", ("build",), "prog: interrupted\n"),
    ],
)
def test_run_cli_prints_one_interrupt_line(command, resumable, line, capsys):
    """click echoes a blank line for a KeyboardInterrupt reaching its main; CliGroup keeps it
    from getting there, and only a resumable command is told to run again."""

    @click.group(cls=CliGroup)
    def group() -> None:
        pass

    @group.command(command)
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_info:
        run_cli(group, "prog", [command], resumable=resumable)
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == line


@pytest.mark.parametrize("busy_s", [0.0, 1.0])
def test_a_ctrl_c_swallowed_by_a_weakref_callback_still_ends_the_command(busy_s, capsys):
    """Python cannot raise from a weakref callback (h5py frees objects through them): the
    interrupt is printed as 'Exception ignored' and lost unless run_cli delivers it again."""

    class Freed:
        pass

    def callback(_ref: object) -> None:
        raise KeyboardInterrupt

    @click.group(cls=CliGroup)
    def group() -> None:
        pass

    @group.command("verify")
    def command() -> None:
        obj = Freed()
        ref = weakref.ref(obj, callback)
        del obj  # the callback runs here; its KeyboardInterrupt is swallowed
        assert ref() is None
        deadline = time.monotonic() + busy_s  # the interrupt delivered again lands in here,
        while time.monotonic() < deadline:  # or, when the command ends first, as it ends
            time.sleep(0.001)

    with pytest.raises(SystemExit) as exit_info:
        run_cli(group, "prog", ["verify"])
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "prog: interrupted\n"


def test_a_second_build_of_the_same_file_is_refused_while_the_first_runs(tmp_path, reference):
    out = tmp_path / "d.h5"
    first = start(out, "--workers", "1")
    assert wait_for(lambda: len(chunks(out)) >= 1 or first.poll() is not None)
    second = run(out, "--workers", "1")
    assert first.poll() is None, "the first build ended before the second started"
    assert second.returncode == 2
    assert second.stderr == (
        f"spritegen: error: {out} is being built by another process (pid {first.pid}); wait "
        "for it to finish, or build to another --out\n"
    )
    first.communicate(timeout=300)
    assert first.returncode == 0
    assert sha(out) == reference
    assert leftovers(tmp_path, "d.h5") == []


def test_a_corrupted_saved_chunk_is_rendered_again_on_resume(tmp_path, reference):
    out = tmp_path / "d.h5"
    proc = start(out, "--workers", "1")
    kill_when(proc, lambda: len(chunks(out)) >= 6, signal.SIGKILL)
    saved = chunks(out)
    flipped, cut = saved[1], saved[4]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one bit pattern changed inside the compressed payload
    flipped.write_bytes(bytes(data))
    cut.write_bytes(cut.read_bytes()[:-10])  # a truncated chunk
    result = run(out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "failed their checksum" in line]
    assert len(notes) == 1 and flipped.name in notes[0] and cut.name in notes[0], result.stdout
    assert sha(out) == reference
    assert verify(out, sample=32).ok


def test_a_parts_folder_killed_before_its_manifest_is_taken_over(tmp_path, reference):
    """A build killed between making OUT.parts and writing its manifest leaves an empty folder
    (at most the manifest's .partial): the same command was refused as "an unfinished build of
    a different spec" and needed --force. It builds, to the bytes of an uninterrupted build."""
    out = tmp_path / "d.h5"
    parts = tmp_path / "d.h5.parts"
    parts.mkdir()
    (parts / "manifest.json.partial").write_bytes(b'{"spec": "fac')
    result = run(out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert sha(out) == reference and not parts.exists()


@pytest.fixture
def small_disk(tmp_path):
    """A real 10 MB file system (root only), so that writes fail with ENOSPC."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10M", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize("moment", ["rendering", "assembly"])
def test_disk_full_leaves_one_line_and_resumes(small_disk, reference, moment):
    out = small_disk / "d.h5"
    filler = small_disk / "filler"
    partial = small_disk / "d.h5.partial"
    proc = start(out, "--workers", "1")
    if moment == "rendering":
        assert wait_for(lambda: len(chunks(out)) >= 3 or proc.poll() is not None)
    else:
        assert wait_for(lambda: partial.exists() or proc.poll() is not None)
    with open(filler, "wb", buffering=0) as fh:  # someone else fills the disk meanwhile
        block = bytes(64 * 1024)
        try:
            while True:
                fh.write(block)
                fh.flush()
        except OSError:
            pass
    _, err = proc.communicate(timeout=120)
    if moment == "assembly" and proc.returncode == 0:
        # the file's blocks were claimed before the disk filled: the build is whole
        assert sorted(p.name for p in small_disk.iterdir()) == ["d.h5", "filler"]
        assert sha(out) == reference
        return
    assert proc.returncode == 1, err
    assert err.startswith(f"spritegen: error: out of disk space in {small_disk} ") and (
        err.count("\n") == 1
    ), err
    parts = out.with_name("d.h5.parts")
    assert sorted(p.name for p in small_disk.iterdir()) == ["d.h5.parts", "filler"]
    assert all(p.suffix == ".chunk" or p.name == "manifest.json" for p in parts.iterdir())
    filler.unlink()
    # the chunks saved before the disk filled are reused; the file is the same as ever
    result = run(out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert sha(out) == reference
    assert leftovers(small_disk, "d.h5") == []


def test_claimed_space_keeps_the_file_length_and_is_given_back(small_disk):
    path = small_disk / "f"
    path.write_bytes(b"x" * 1000)
    free = shutil.disk_usage(small_disk).free
    assert diskspace.reserve(path, 4 << 20)
    assert path.read_bytes() == b"x" * 1000
    assert shutil.disk_usage(small_disk).used >= 4 << 20  # the file holds 1,000 bytes
    with pytest.raises(OSError) as raised:  # more than the disk holds: nothing stays claimed
        diskspace.reserve(small_disk / "f", 64 << 20)
    assert raised.value.errno == errno.ENOSPC
    diskspace.release_unused(path)
    assert shutil.disk_usage(small_disk).free == free
    assert path.read_bytes() == b"x" * 1000


def test_a_disk_too_full_to_assemble_stops_before_hdf5_writes_a_chunk(small_disk, reference):
    """The disk fills between the up-front check and assembly (someone else wrote meanwhile).

    The file's blocks are claimed before HDF5 writes: a write that fails for lack of space
    inside HDF5 can crash the process with SIGSEGV instead of giving the one-line error (it did,
    at most free sizes between a fifth and the whole of the file). The up-front check is
    switched off in the child, which is the only way to reach assembly with too little space
    without racing a filler against the build.
    """
    out = small_disk / "d.h5"
    spec = with_overrides(default_spec(5), {"n": 12000, "eval_preset": "tiny"})
    file_bytes = estimate(spec).file_bytes
    with open(small_disk / "filler", "wb") as fh:  # leaves room for the chunks, half the file
        fh.truncate(shutil.disk_usage(small_disk).free - int(1.5 * file_bytes))
        os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
    child = (
        "import sys, spritegen.build as b; b._check_free_space = lambda *a: None; "
        "from spritegen.cli import main; main(sys.argv[1:])"
    )
    cmd = [sys.executable, "-c", child, *ARGS, "--out", str(out), "--workers", "1"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr
    assert (
        result.stderr.startswith(
            f"spritegen: error: out of disk space in {small_disk} while building d.h5: assembling "
            "it needs about "
        )
        and result.stderr.count("\n") == 1
    ), result.stderr
    assert sorted(p.name for p in small_disk.iterdir()) == ["d.h5.parts", "filler"]
    (small_disk / "filler").unlink()
    resumed = run(out, "--workers", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert sha(out) == reference
    assert leftovers(small_disk, "d.h5") == []


def test_refused_up_front_when_the_disk_cannot_hold_the_file(small_disk):
    result = subprocess.run(
        SPRITEGEN + ["build", "--factors", "6", "--n", "50000", "--out", str(small_disk / "x.h5")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stdout.startswith(
        f"{small_disk / 'x.h5'}: will render 2,955,000 images (50,000 training + 2,905,000 "
        "evaluation), file about"
    )
    assert result.stderr.startswith(f"spritegen: error: not enough free disk space in {small_disk}")
    assert list(small_disk.iterdir()) == []


def test_seven_factors_with_few_images_shows_the_evaluation_sets(small_disk):
    """--factors 7 --n 300 renders 2.89M evaluation images: the estimate line says so first."""
    result = subprocess.run(
        SPRITEGEN + ["build", "--factors", "7", "--n", "300"],
        cwd=small_disk,
        capture_output=True,
        text=True,
    )
    assert "will render 2,905,300 images (300 training + 2,905,000 evaluation)" in result.stdout
    assert "--eval-preset quick, tiny or none renders fewer" in result.stdout
    assert result.returncode == 2 and "not enough free disk space" in result.stderr
    assert list(small_disk.iterdir()) == []


def test_the_estimate_line_advises_only_presets_that_render_fewer(tmp_path):
    """With --eval-preset tiny the line advised "quick, tiny or none": quick renders 27 times
    more evaluation images and tiny is what was asked for; only none renders fewer."""
    out = tmp_path / "k2.h5"
    result = subprocess.run(
        SPRITEGEN
        + ["build", "--factors", "2", "--n", "300", "--eval-preset", "tiny", "--quiet"]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert line.startswith(f"{out}: will render 5,900 images (300 training + 5,600 evaluation)")
    assert line.endswith("; the evaluation sets dominate: --eval-preset none renders fewer")


def test_the_estimate_line_counts_one_image_in_the_singular(tmp_path):
    """``--n 1 --eval-preset none`` printed "will render 1 images"."""
    from spritegen.build import estimate
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(default_spec(2), {"n": 1, "eval_preset": "none"})
    line = estimate(spec).line(tmp_path / "one.h5")
    assert f"{tmp_path / 'one.h5'}: will render 1 image (1 training + 0 evaluation)" in line


@pytest.mark.parametrize("platform", ["bogus", "osmesa"])
def test_a_gl_platform_that_cannot_start_is_one_line_exit_1(tmp_path, platform):
    """PYOPENGL_PLATFORM naming a platform pyrender lacks (pyrender's "Unsupported PyOpenGL
    platform") or one whose library is missing (osmesa without libOSMesa here; where it is
    installed the build simply works) ended a 3D build, verify and show in a worker's traceback.
    The input is good and the environment is not: one line, exit 1, and nothing published."""
    spec = tmp_path / "s3.yaml"
    spec.write_text("factors: 5\nrenderer: 3d\nn: 20\nimage_size: 16\nevaluation: none\n")
    good = tmp_path / "good.h5"
    made = subprocess.run(
        SPRITEGEN + ["build", str(spec), "--out", str(good), "--quiet", "--workers", "1"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "PYOPENGL_PLATFORM": platform}
    out = tmp_path / "x.h5"
    for argv in (
        ["build", str(spec), "--out", str(out), "--quiet", "--workers", "2"],
        ["verify", str(good)],
        ["show", str(good), "--out", str(tmp_path / "pics") + "/"],
    ):
        result = subprocess.run(SPRITEGEN + argv, capture_output=True, text=True, env=env)
        if result.returncode == 0 and platform == "osmesa":
            pytest.skip("OSMesa is installed here: the osmesa platform works")
        assert result.returncode == 1, (argv, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert lines[0].startswith(
            f"spritegen: error: the 3D renderer cannot start with PYOPENGL_PLATFORM='{platform}': "
        )
        assert lines[0].endswith(
            "unset it for headless EGL (the default), or install what "
            "that platform needs (docs/render3d.md)"
        )
    assert not out.exists() and not (tmp_path / "pics").exists()


def test_atomic_write_on_a_full_disk_keeps_the_old_file_and_leaves_no_partial(small_disk):
    from spritegen.atomic import write_bytes_atomic, write_text_atomic

    target = small_disk / "record.json"
    write_text_atomic(target, "old\n")
    with pytest.raises(OSError) as info:
        write_bytes_atomic(target, bytes(20 * 1024 * 1024))  # twice the file system
    assert info.value.errno == 28
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["record.json"]
