"""spritegen: ground-truth image datasets for disentanglement research.

Importing spritegen is cheap: the renderers (pycairo, pyrender) and h5py load only when used, and
torch never loads here (``spritegen.torchdata`` is the only module that needs it).

Building is ``from spritegen.build import build``: the package does not re-export the function,
because its module has the same name, and once that module is imported (by the CLI, or by any
``import spritegen.build``) Python makes ``spritegen.build`` the module: the re-exported name
meant the function or the module depending on what had run before.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING

try:  # written once, in pyproject.toml; recorded in every file a build writes
    __version__ = metadata.version("spritegen")
except metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:  # pragma: no cover
    from spritegen.groundtruth import GroundTruth
    from spritegen.oracle import Oracle
    from spritegen.spec import DatasetSpec

__all__ = [
    "Oracle",
    "GroundTruth",
    "DatasetSpec",
    "load_spec",
    "default_spec",
    "__version__",
]


def __getattr__(name: str):
    if name == "Oracle":
        from spritegen.oracle import Oracle

        return Oracle
    if name == "GroundTruth":
        from spritegen.groundtruth import GroundTruth

        return GroundTruth
    if name in ("DatasetSpec", "load_spec", "default_spec"):
        from spritegen import spec

        return getattr(spec, name)
    raise AttributeError(f"module 'spritegen' has no attribute {name!r}")
