"""Running `bench` in-process the way a user meets it, for the bad-input tests: the exit status,
stderr and stdout, a traceback when an exception escapes the console entry, and whether any file
changed."""

from __future__ import annotations

import hashlib
import traceback
from pathlib import Path

from benchmark.cli import main


def invoke(capsys, *args: str) -> tuple[int | str, str, str]:
    """Run `bench ARGS` in-process; (exit status or "traceback", stderr, stdout)."""
    capsys.readouterr()
    try:
        main(list(args))
        code: int | str = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # escaped run_cli: what a user would see as a traceback
        return "traceback", traceback.format_exc(), ""
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` and the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def assert_one_clear_line(capsys, root: Path, args: list[str], *fragments: str, code=2) -> str:
    """`bench ARGS` exits with ``code`` and one `bench: error:` line holding every fragment, and
    changes no file under ``root``."""
    before = snapshot(root)
    status, err, _ = invoke(capsys, *args)
    assert status == code, f"exit {status}, stderr: {err}"
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bench: error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert snapshot(root) == before, "files were created or changed"
    return lines[0]
