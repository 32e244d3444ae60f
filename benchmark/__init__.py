"""benchmark: trains VAE-family models on spritegen data and scores their disentanglement.

Kept minimal on purpose: importing ``benchmark`` (or ``benchmark.metrics``) must not load torch,
so that scoring a numpy representation, or running ``bench --help``, stays cheap. Subpackages are
imported by name (``benchmark.metrics``, ``benchmark.cli``).
"""

from __future__ import annotations

__all__: list[str] = []
