"""The Python examples of README.md and docs/ run as printed, on a real (small) dataset.

A user's first contact with the API is a copied example; one that has drifted from the code
fails in their notebook, not in ours. Each ```python block is run in a fresh namespace, in a
folder where the file names the examples use (``factors5.h5``, ``data/k5.h5``) are a small K = 5
build. Blocks that need what a test cannot have (a download, a full training run, larger
evaluation sets than a small build holds) are listed in ``NOT_RUN`` with the reason; a listed
block that no longer exists fails the suite, so the list cannot go stale.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: (document, text the block contains) -> why the suite does not run it.
NOT_RUN = {
    ("datasets.md", "dsprites:"): "needs the dSprites download",
    ("metrics.md", 'preset="quick"'): "needs the quick evaluation sets (a 150k-image build)",
    ("metrics.md", 'preset="full"'): "needs the full evaluation sets and the user's simulator",
    ("models.md", "Model(image_shape=(C, H, W)"): "a signature, not a program",
    ("training.md", "run_ensemble("): "trains eight models for 30 epochs",
}


def python_blocks() -> list[tuple[str, int, str]]:
    """Every fenced Python block: (document name, line of its fence, code)."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            line = text[: match.start()].count("\n") + 1
            found.append((document.name, line, match.group(1)))
    return found


def reason_not_run(document: str, code: str) -> str | None:
    reasons = (why for (doc, text), why in NOT_RUN.items() if doc == document and text in code)
    return next(reasons, None)


BLOCKS = python_blocks()


def test_every_block_left_out_still_exists():
    for document, text in NOT_RUN:
        assert any(doc == document and text in code for doc, _line, code in BLOCKS), (
            f"NOT_RUN names a block of {document} holding {text!r} that is no longer there"
        )


def test_the_readme_has_examples_to_run():
    assert sum(doc == "README.md" for doc, _line, _code in BLOCKS) >= 2


@pytest.mark.parametrize(
    ("document", "line", "code"), BLOCKS, ids=[f"{doc}:{line}" for doc, line, _ in BLOCKS]
)
def test_example_runs(document, line, code, dataset_k5, tmp_path, monkeypatch):
    reason = reason_not_run(document, code)
    if reason:
        pytest.skip(reason)
    shutil.copyfile(dataset_k5, tmp_path / "factors5.h5")
    (tmp_path / "data").mkdir()
    shutil.copyfile(dataset_k5, tmp_path / "data" / "k5.h5")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{document}:{line}", "exec"), {"__name__": f"example_{line}"})
