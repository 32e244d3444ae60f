"""Building a sweep's datasets once, into the sweep folder, for all its runs to share.

Each entry of the spec's ``datasets:`` section becomes ``<sweep>/datasets/<name>.h5`` made by
``spritegen.build.build``, which is itself resumable and skips a complete file, so starting a sweep
again costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from benchmark.sweep.spec import DatasetEntry


def dataset_path(sweep_dir: Path, name: str) -> Path:
    return sweep_dir / "datasets" / f"{name}.h5"


def is_built(path: Path) -> bool:
    """Whether the dataset file is there (a build writes it only once complete); a file there
    that is not a complete dataset is a DatasetError saying how to rebuild it."""
    from spritegen.datafile import open_dataset
    from spritegen.errors import DatasetError

    if not path.exists():
        return False
    try:
        open_dataset(path).close()
    except DatasetError as exc:
        raise DatasetError(f"{exc}; delete it and start the sweep again to rebuild it") from None
    return True


def build_datasets(
    entries: list[DatasetEntry],
    sweep_dir: Path,
    workers: int | None = None,
    executor: Callable[[Callable, Iterable], Iterable] | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Build every entry not built yet (a killed build resumes); return name -> file path.

    ``executor(fn, items)`` (e.g. ``RayExecutor(...).map_ordered``) renders the shards elsewhere.
    """
    from spritegen.build import build

    paths = {}
    for entry in entries:
        path = dataset_path(sweep_dir, entry.name)
        spec = entry.resolve()
        if not is_built(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            build(spec, path, workers=workers, executor=executor, progress=progress)
        paths[entry.name] = path
    return paths
