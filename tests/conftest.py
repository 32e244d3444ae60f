"""Shared fixtures: small real datasets built once per session, caches kept out of $HOME."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_CACHE = Path(tempfile.mkdtemp(prefix="spritegen-test-cache-"))
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
os.environ["MESA_SHADER_CACHE_DIR"] = str(_CACHE / "mesa")
os.environ["XDG_CACHE_HOME"] = str(_CACHE / "xdg")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(_CACHE / "inductor")
os.environ.setdefault("RAY_TMPDIR", str(_CACHE / "ray"))
# Every `python -m spritegen` / `bench` the tests start imports this checkout's code, whatever
# its working folder: a relative PYTHONPATH (or an installed copy elsewhere) let tests that
# start a command in another folder check other code than the one under test.
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT, *(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != ".")]
)
# A shell without job control starts background jobs with Ctrl-C ignored, and every process the
# tests start would inherit that: the Ctrl-C tests would then see builds and runs ignore it.
# Give the suite (and so its children) the terminal's default, however it was launched.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
# Under pytest-xdist (make test: one worker per core) each worker, and every process it starts,
# gets its share of the cores: torch's default of one thread per core in every worker would
# oversubscribe them, and small convolutions scale poorly across threads anyway.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _share = (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, _share)))


def build_small(
    tmp: Path,
    factors: int,
    n: int = 1000,
    preset: str = "tiny",
    seed: int = 0,
    renderer: str | None = None,
    workers: int = 1,
    name: str | None = None,
    image_size: int = 64,
) -> Path:
    from spritegen.build import build
    from spritegen.spec import default_spec, with_overrides

    spec = with_overrides(
        default_spec(factors, renderer),
        {"n": n, "eval_preset": preset, "seed": seed, "image_size": image_size},
    )
    side = "" if image_size == 64 else f"-{image_size}px"
    stem = f"k{factors}-{renderer or 'default'}-{n}-{preset}-{seed}-w{workers}{side}"
    out = tmp / (name or f"{stem}.h5")
    return build(spec, out, workers=workers, progress=False)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("datasets")


@pytest.fixture(scope="session")
def dataset_k5(data_dir) -> Path:
    """A small K=5 2D dataset with tiny evaluation sets."""
    return build_small(data_dir, 5, n=1500)


@pytest.fixture(scope="session")
def dataset_k2(data_dir) -> Path:
    return build_small(data_dir, 2, n=1000)


@pytest.fixture
def read_only(tmp_path) -> Iterator[Path]:
    """``tmp_path/ro``, a read-only file system: root ignores permission bits, so a real one is
    mounted (skipped where that needs root and there is none)."""
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4M", "tmpfs", str(mount)]).returncode:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
