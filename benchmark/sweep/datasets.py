"""Building a sweep's datasets once, into the sweep folder, for all its runs to share.

Each entry of the spec's ``datasets:`` section becomes ``<sweep>/datasets/<name>.h5`` made by
``spritegen.build.build``, which is itself resumable and skips a complete file, so starting a sweep
again costs nothing here.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from benchmark.sweep.spec import DatasetEntry


def dataset_path(sweep_dir: Path, name: str) -> Path:
    return sweep_dir / "datasets" / f"{name}.h5"


def dataset_spec(entry: DatasetEntry) -> Any:
    """The spritegen ``DatasetSpec`` an entry describes: its spec file (or the default spec for
    its number of factors) with the entry's other fields as overrides."""
    from spritegen.spec import default_spec, load_spec  # noqa: PLC0415

    overrides = dict(entry.overrides)
    if entry.spec_path is not None:
        return load_spec(entry.spec_path, overrides)
    return load_spec(default_spec(int(overrides["factors"])), overrides)


def build_datasets(
    entries: list[DatasetEntry], sweep_dir: Path, workers: int | None = None, executor: Any = None
) -> dict[str, Path]:
    """Build (or finish building) every entry; return name -> file path."""
    from spritegen.build import build  # noqa: PLC0415

    kwargs: dict[str, Any] = {}
    params = inspect.signature(build).parameters
    if workers is not None and "workers" in params:
        kwargs["workers"] = workers
    if executor is not None and "executor" in params:
        kwargs["executor"] = executor
    paths = {}
    for entry in entries:
        path = dataset_path(sweep_dir, entry.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        build(dataset_spec(entry), path, **kwargs)
        paths[entry.name] = path
    return paths
