"""Malformed input to the ``spritegen`` command: one line, exit 2, no traceback, nothing written.

Each case sets up its input in an empty folder (the current folder of the command), runs the
real command line in this process, and checks the rules of docs/reliability.md: exit status 2,
exactly one line on stderr that names the field or file and what is allowed, no traceback, and
no file created or changed in the folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
from train_fixtures import make_tiny_dataset

import spritegen
from spritegen.cli import main
from spritegen.datafile import read_attrs
from spritegen.errors import SpecError, quote
from spritegen.spec import (
    MAX_CHUNK_BYTES,
    MAX_IMAGES,
    MAX_SEED,
    MAX_SPEC_BYTES,
    MAX_SPEC_DEPTH,
    default_spec,
    load_yaml_strict,
    parse_spec_text,
    with_overrides,
)

GOOD_SPEC = "factors: 2\nn: 300\nevaluation: tiny\n"


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str  # a part of the one error line: the field/file and what is allowed
    setup: Callable[[Path, Path], None] | None = None  # (folder, a good dataset file)


def spec(text: str | bytes, name: str = "spec.yaml") -> Callable[[Path, Path], None]:
    def make(folder: Path, _data: Path) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return make


def dataset(edit: Callable[[h5py.File], None] | None = None, truncate: int = 0):
    """A copy of a good dataset as data.h5, edited in place (attributes, groups) or truncated."""

    def make(folder: Path, data: Path) -> None:
        path = folder / "data.h5"
        shutil.copy(data, path)
        if edit is not None:
            with h5py.File(path, "r+") as f:
                edit(f)
        if truncate:
            with open(path, "r+b") as fh:
                fh.truncate(truncate)

    return make


def set_attr(key: str, value) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        f.attrs[key] = value

    return edit


def delete(*names: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        for name in names:
            del f[name]

    return edit


def replace(name: str, data) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f[name]
        f.create_dataset(name, data=data)

    return edit


def del_attr(key: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        del f.attrs[key]

    return edit


def empty_images(f: h5py.File) -> None:
    """/images with no rows (as an interrupted writer could leave it), kept chunked."""
    old = f["images"]
    shape, chunks, dtype = old.shape, old.chunks, old.dtype
    del f["images"]
    f.create_dataset(
        "images",
        shape=(0,) + shape[1:],
        maxshape=(None,) + shape[1:],
        dtype=dtype,
        chunks=chunks,
        compression="gzip",
    )


def corrupt_first_chunk(f: h5py.File) -> None:
    """Flip 50 stored bytes of the first /images chunk: gzip can no longer inflate it."""
    offset = f["images"].id.get_chunk_info(0).byte_offset
    path = f.filename
    f.flush()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        data = fh.read(50)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))


def edit_spec(old: str, new: str) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        text = f.attrs["spec"]
        assert old in text
        f.attrs["spec"] = text.replace(old, new)

    return edit


def flip_structure(signature: bytes, offset: int, nth: int = 0):
    """A copy of a good dataset as data.h5 with one byte of its HDF5 metadata inverted: the byte
    ``offset`` bytes into the ``nth`` structure that starts with ``signature`` (``HEAP`` a local
    heap, ``TREE`` a B-tree node, ``GCOL`` the global heap of the variable-length strings), as
    a bit rot or a bad copy leaves it; the pixels and checksums are untouched."""

    def make(folder: Path, data: Path) -> None:
        blob = bytearray(data.read_bytes())
        at = -1
        for _ in range(nth + 1):
            at = blob.index(signature, at + 1)
        blob[at + offset] ^= 0xFF
        (folder / "data.h5").write_bytes(bytes(blob))

    return make


def both(*makers: Callable[[Path, Path], None]) -> Callable[[Path, Path], None]:
    def make(folder: Path, data: Path) -> None:
        for maker in makers:
            maker(folder, data)

    return make


def fifo(folder: Path, _data: Path) -> None:
    os.mkfifo(folder / "fifo")


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
BUILD = ["build", "--quiet", "--eval-preset", "tiny", "--n", "300"]

CASES = [
    # --- flags
    Case("no-spec", ["build"], "either a SPEC file or --factors"),
    Case("factors-8", ["build", "--factors", "8"], "'--factors': 8 is not in the range 1<=x<=7"),
    Case("factors-0", ["build", "--factors", "0"], "'--factors'"),
    Case(
        "n-0",
        ["build", "--factors", "2", "--n", "0"],
        "'--n': 0 is not in the range 1<=x<=100000000",
    ),
    Case(
        "n-above-cap",
        ["build", "--factors", "2", "--n", str(MAX_IMAGES + 1)],
        f"'--n': {MAX_IMAGES + 1} is not in the range 1<=x<={MAX_IMAGES}",
    ),
    Case(
        "seed-above-cap",
        ["build", "--factors", "2", "--seed", str(MAX_SEED + 1)],
        f"'--seed': {MAX_SEED + 1} is not in the range 0<=x<={MAX_SEED}",
    ),
    Case("n-text", ["build", "--factors", "2", "--n", "many"], "'--n': 'many' is not a valid"),
    Case("seed-neg", ["build", "--factors", "2", "--seed", "-1"], "'--seed'"),
    Case("size-8", ["build", "--factors", "2", "--image-size", "8"], "16<=x<=1024"),
    Case("renderer", ["build", "--factors", "2", "--renderer", "4d"], "'2d', '3d'"),
    Case("preset", ["build", "--factors", "2", "--eval-preset", "huge"], "'full', 'quick'"),
    Case("workers-0", ["build", "--factors", "2", "--workers", "0"], "'--workers'"),
    Case("executor", ["build", "--factors", "2", "--executor", "spark"], "'local', 'ray'"),
    Case("address", ["build", "--factors", "2", "--address", "x:1"], "--executor ray"),
    Case("bogus-flag", ["build", "--factors", "2", "--bogus"], "No such option '--bogus'"),
    Case("no-command", ["nosuch"], "No such command 'nosuch'"),
    Case("spec-and-factors", ["build", "spec.yaml", "--factors", "2"], "not both", spec("x: 1")),
    Case("7-in-2d", ["build", "--factors", "7", "--renderer", "2d"], "3d when factors is 7"),
    Case("sample-neg", ["verify", "data.h5", "--sample", "-1"], "'--sample'", dataset()),
    Case("samples-0", ["show", "data.h5", "--samples", "0"], "'--samples'", dataset()),
    # --- spec files
    Case(
        "dup-key",
        ["build", "spec.yaml"],
        "line 2: duplicate key 'factors'",
        spec("factors: 2\nfactors: 3\n"),
    ),
    Case(
        "dup-nested",
        ["build", "spec.yaml"],
        "duplicate key 'compression' (first given at line 3)",
        spec("factors: 2\nstorage:\n  compression: gzip\n  compression: none\n"),
    ),
    Case(
        "alias-bomb", ["build", "spec.yaml"], "aliases (&name, *name) are not allowed", spec(BOMB)
    ),
    Case(
        "binary",
        ["build", "spec.yaml"],
        "'spec.yaml' is a binary file",
        spec(bytes(range(256)) * 8),
    ),
    Case("hdf5-spec", ["build", "data.h5"], "'data.h5' is a binary file", dataset()),
    Case(
        "latin1",
        ["build", "spec.yaml"],
        "not UTF-8 text",
        spec("factors: 2\nname: caf\xe9\n".encode("latin-1")),
    ),
    Case(
        "too-big",
        ["build", "spec.yaml"],
        f"larger than {MAX_SPEC_BYTES:,} bytes",
        spec(GOOD_SPEC + "#" * MAX_SPEC_BYTES),
    ),
    Case("empty", ["build", "spec.yaml"], "must be a YAML mapping", spec("")),
    Case("list", ["build", "spec.yaml"], "must be a YAML mapping", spec("- 1\n- 2\n")),
    Case("not-yaml", ["build", "spec.yaml"], "not valid YAML at line", spec("factors: [\n")),
    Case("no-such-spec", ["build", "missing.yaml"], "cannot read spec file 'missing.yaml'"),
    Case(
        "unknown-field",
        ["build", "spec.yaml"],
        "unknown field 'colour'",
        spec("factors: 2\ncolour: 1\n"),
    ),
    Case(
        "factors-str",
        ["build", "spec.yaml"],
        "'factors': got '3'; allowed: an integer",
        spec("factors: '3'\n"),
    ),
    Case(
        "n-huge",
        ["build", "spec.yaml"],
        "'n': got 1000000000; allowed",
        spec("factors: 2\nn: 1000000000\n"),
    ),
    Case(
        "fixed-hue",
        ["build", "spec.yaml"],
        "an inactive hue always means white",
        spec("factors: 2\nfixed: {hue: 0.5}\n"),
    ),
    # the project's own sweep spec was "spec top level: unknown field 'description'"
    Case(
        "sweep-spec-to-build",
        ["build", "spec.yaml"],
        "this is a sweep spec (it has 'datasets', 'set', 'zip', 'grid', 'report'), not a dataset "
        "spec: run it with `bench sweep SPEC`; a dataset spec has the fields format, name, factors",
        spec((Path(__file__).parents[1] / "specs" / "sweep-tiny.yaml").read_text()),
    ),
    # the 2D renderer has no second rotation: the value was stored and silently not drawn
    Case(
        "fixed-rotation-y-2d",
        ["build", "spec.yaml"],
        "'fixed.rotation_y': got 1.5; allowed: 0 with renderer 2d (rotation_y, the second "
        "rotation, needs the 3D renderer: renderer: 3d)",
        spec("factors: 2\nfixed: {rotation_y: 1.5}\n"),
    ),
    # the list of what fixed takes named hue, which fixed refuses
    Case(
        "fixed-active-factor",
        ["build", "spec.yaml"],
        "'fixed.pos_x': got 0.2; allowed: values for inactive factors only (scale, shape, "
        "rotation, rotation_y (0 in 2D))",
        spec("factors: 2\nfixed: {pos_x: 0.2}\n"),
    ),
    Case(
        "chunk-0",
        ["build", "spec.yaml"],
        "'storage.chunk_images': got 0",
        spec("factors: 2\nstorage: {chunk_images: 0}\n"),
    ),
    Case(
        "eval-int",
        ["build", "spec.yaml"],
        "'evaluation': got 5; allowed",
        spec("factors: 2\nevaluation: 5\n"),
    ),
    Case(
        "long-value",
        ["build", "spec.yaml"],
        "'factors': got 'xxxxxxxx",
        spec("factors: " + "x" * 100_000 + "\n"),
    ),
    Case(
        "escape-name",
        ["build", "spec.yaml"],
        "'name': got '../../escaped'; allowed without --out",
        spec("factors: 2\nname: ../../escaped\n"),
    ),
    Case(
        "dot-name",
        ["build", "spec.yaml"],
        "not starting with '.'",
        spec("factors: 2\nname: .hidden\n"),
    ),
    Case(
        "nul-name", ["build", "spec.yaml"], "a plain file name", spec('factors: 2\nname: "a\\0b"\n')
    ),
    Case(
        "blank-name",
        ["build", "spec.yaml"],
        "'name': got ' '; allowed without --out: a plain file name (printable characters",
        spec('factors: 2\nname: " "\n'),
    ),
    Case(
        "padded-name",
        ["build", "spec.yaml"],
        "'name': got 'data '; allowed without --out: a plain file name",
        spec('factors: 2\nname: "data "\n'),
    ),
    Case(
        "line-separator-name",
        ["build", "spec.yaml"],
        "'name': got 'a\\u2028b\\x85c'; allowed without --out",
        spec('factors: 2\nname: "a\\u2028b\\u0085c"\n'),
    ),
    Case(
        "spec-file-without-stem",
        ["build", ".yaml"],
        "the spec sets no 'name', so the output is named after the spec file '.yaml', giving "
        "'.yaml', which is not a plain file name",
        spec(GOOD_SPEC, ".yaml"),
    ),
    Case(
        "preset-list",
        ["build", "spec.yaml"],
        "'evaluation.preset': got [1]; allowed: full, quick",
        spec("factors: 2\nevaluation: {preset: [1]}\n"),
    ),
    Case(
        "preset-mapping",
        ["build", "spec.yaml"],
        "'evaluation.preset': got {'a': 1}; allowed: full",
        spec("factors: 2\nevaluation: {preset: {a: 1}}\n"),
    ),
    Case(
        "renderer-list",
        ["build", "spec.yaml"],
        "'renderer': got [1]; allowed: 2d, 3d",
        spec("factors: 2\nrenderer: [1]\n"),
    ),
    Case(
        "compression-mapping",
        ["build", "spec.yaml"],
        "'storage.compression': got {'a': 1}; allowed: gzip, none",
        spec("factors: 2\nstorage: {compression: {a: 1}}\n"),
    ),
    Case(
        "fixed-name-list",
        ["build", "spec.yaml"],
        "not valid YAML at line 2: found unhashable key",
        spec("factors: 2\nfixed: {? [1, 2] : 0}\n"),
    ),
    Case(
        "deep-list",
        ["build", "spec.yaml"],
        f"line 1: lists and mappings nested more than {MAX_SPEC_DEPTH} deep",
        spec("factors: " + "[" * 500 + "]" * 500 + "\n"),
    ),
    Case(
        "deep-mapping",
        ["build", "spec.yaml"],
        f"line 2: lists and mappings nested more than {MAX_SPEC_DEPTH} deep",
        spec("factors: 2\nn: " + "{a: " * 500 + "1" + "}" * 500 + "\n"),
    ),
    Case(
        "deep-block",
        ["build", "spec.yaml"],
        f"nested more than {MAX_SPEC_DEPTH} deep",
        spec("factors: 2\nn:\n" + "".join(" " * i + "-\n" for i in range(1, 600))),
    ),
    Case(
        "verify-deep-stored-spec",
        ["verify", "data.h5"],
        f"stored spec is unreadable: data.h5 (stored spec): line 1: lists and mappings nested "
        f"more than {MAX_SPEC_DEPTH} deep",
        dataset(set_attr("spec", "factors: " + "[" * 3000 + "]" * 3000)),
    ),
    Case(
        "fixed-list",
        ["build", "spec.yaml"],
        "'fixed': got []; allowed: a mapping",
        spec("factors: 2\nfixed: []\n"),
    ),
    Case(
        "fixed-0",
        ["build", "spec.yaml"],
        "'fixed': got 0; allowed: a mapping",
        spec("factors: 2\nfixed: 0\n"),
    ),
    Case(
        "storage-0",
        ["build", "spec.yaml"],
        "'storage': got 0; allowed: a mapping",
        spec("factors: 2\nstorage: 0\n"),
    ),
    Case(
        "storage-empty-string",
        ["build", "spec.yaml"],
        "'storage': got ''; allowed: a mapping",
        spec('factors: 2\nstorage: ""\n'),
    ),
    Case(
        "chunk-too-big",
        ["build", "spec.yaml"],
        "'storage.chunk_images': got 65536; allowed: at most 341 for 1024x1024x3 images "
        "(one chunk's raw pixels must fit in 1 GiB)",
        spec("factors: 6\nimage_size: 1024\nstorage: {chunk_images: 65536}\n"),
    ),
    Case(
        "chunk-too-big-by-flag",
        ["build", "spec.yaml", "--image-size", "1024"],
        "'storage.chunk_images': got 4096; allowed: at most 1,024 for 1024x1024x1",
        spec("factors: 2\nstorage: {chunk_images: 4096}\n"),
    ),
    # --- outputs
    Case(
        "disk",
        ["build", "--factors", "2", "--n", "100000000", "--image-size", "1024", "--quiet"],
        "not enough free disk space in",
    ),
    Case(
        "out-under-file",
        BUILD + ["--factors", "2", "--out", "file/x.h5"],
        "a folder on its path is a file ('file')",
        spec("", "file"),
    ),
    Case(
        "out-exists",
        BUILD + ["--factors", "2", "--out", "data.h5"],
        "already exists; pass --force",
        dataset(),
    ),
    Case(
        "out-is-the-spec-force",
        BUILD + ["spec.yaml", "--out", "spec.yaml", "--force"],
        "--out 'spec.yaml' exists and is not an HDF5 file (it starts with b'factors:'); --force "
        "replaces only a dataset",
        spec(GOOD_SPEC),
    ),
    Case(
        "out-text-file-force",
        BUILD + ["--factors", "2", "--out", "notes.txt", "--force"],
        "--out 'notes.txt' exists and is not an HDF5 file",
        spec("my notes", "notes.txt"),
    ),
    # sub/../x is x once sub is made; while sub was missing x could not be looked at, so the
    # build made sub, then refused (x existed) or, with --force, wrote over the user's file
    Case(
        "out-through-missing-folder-exists",
        BUILD + ["--factors", "2", "--out", "sub/../data.h5"],
        "data.h5 already exists; pass --force",
        dataset(),
    ),
    Case(
        "out-through-missing-folder-text-file-force",
        BUILD + ["--factors", "2", "--out", "sub/../notes.txt", "--force"],
        "--out 'notes.txt' exists and is not an HDF5 file",
        spec("my notes", "notes.txt"),
    ),
    Case(
        "show-out-through-missing-folder-not-png",
        ["show", "data.h5", "--out", "sub/../notes.png"],
        "--out 'notes.png': exists and is not a PNG image",
        both(dataset(), spec("my notes", "notes.png")),
    ),
    Case("out-is-dir", BUILD + ["--factors", "2", "--out", "."], "'--out'"),
    Case(  # every line naming the output (progress, disk full) would have broken in two
        "out-with-a-newline",
        BUILD + ["--factors", "2", "--out", "two\nlines.h5"],
        r"--out 'two\nlines.h5' holds the control character '\n'; allowed: a path without line "
        "breaks or control characters",
    ),
    Case(
        "show-out-with-a-tab",
        ["show", "data.h5", "--out", "a\tb.png"],
        r"--out 'a\tb.png' holds the control character '\t'",
        dataset(),
    ),
    Case(
        "out-empty",
        BUILD + ["--factors", "2", "--out", ""],
        "--out: got ''; allowed: the path of the file to build",
    ),
    Case(
        "out-ends-in-slash",
        BUILD + ["--factors", "2", "--out", "new/"],
        "--out 'new/' ends in '/', so it names a folder; allowed: the path of the file to build, "
        "such as 'new/data.h5'",
    ),
    Case(
        "out-device",
        BUILD + ["--factors", "2", "--out", "/dev/null", "--force"],
        "--out '/dev/null' exists and is not a regular file",
    ),
    Case(
        "out-in-proc",
        BUILD + ["--factors", "2", "--out", "/proc/x.h5"],
        "--out '/proc/x.h5': /proc is on a virtual file system that stores no files",
    ),
    Case(
        "parts-is-a-file",
        BUILD + ["--factors", "2", "--out", "d.h5", "--force"],
        "d.h5.parts is not a parts folder of a build (it is a file); move or delete it",
        spec("my notes", "d.h5.parts"),
    ),
    Case(
        "parts-without-manifest-force",
        BUILD + ["--factors", "2", "--out", "d.h5", "--force"],
        "d.h5.parts is in the way: it holds files but no manifest.json, so it is not the parts "
        "folder of a build; move or delete it",
        spec("my notes", "d.h5.parts/notes.txt"),
    ),  # --force deleted the folder and the user's files in it
    Case(
        "partial-is-a-folder",
        BUILD + ["--factors", "2", "--out", "d.h5"],
        "d.h5.partial is in the way: the build writes a file there, but it is a folder",
        spec("", "d.h5.partial/x"),
    ),
    Case(
        "lock-is-a-folder",
        BUILD + ["--factors", "2", "--out", "d.h5"],
        "d.h5.lock is in the way",
        spec("", "d.h5.lock/x"),
    ),
    Case(
        "out-name-too-long",
        BUILD + ["--factors", "2", "--out", "a" * 300 + ".h5"],
        "File name too long; choose another --out",
    ),
    Case(
        "show-out-under-file",
        ["show", "data.h5", "--out", "data.h5/grid.png"],
        "--out 'data.h5/grid.png': cannot write the picture (a folder on its path is a file)",
        dataset(),
    ),
    # Path("") is the current folder: it was named as '.', which the user never typed
    Case("info-empty", ["info", ""], "'PATH': got an empty path; name a file or folder"),
    Case("build-empty-spec", ["build", ""], "'[SPEC]': got an empty path"),
    # --- dataset files
    Case("info-name-too-long", ["info", "b" * 300 + ".h5"], "'bbbb"),
    Case("info-folder", ["info", "sub"], "'PATH': File 'sub' is a directory", spec("", "sub/x")),
    Case("info-missing", ["info", "none.h5"], "none.h5: no such file"),
    Case("info-text", ["info", "spec.yaml"], "not an HDF5 file", spec(GOOD_SPEC)),
    Case("info-truncated", ["info", "data.h5"], "not an HDF5 file", dataset(truncate=4000)),
    Case(
        "info-foreign", ["info", "data.h5"], "not a spritegen dataset", dataset(del_attr("format"))
    ),
    Case(
        "info-version-str",
        ["info", "data.h5"],
        "format version 'one' is not supported",
        dataset(set_attr("format_version", "one")),
    ),
    Case(
        "show-version-float",
        ["show", "data.h5"],
        "format version 1.5 is not supported",
        dataset(set_attr("format_version", 1.5)),
    ),
    Case(
        "verify-version-99",
        ["verify", "data.h5"],
        "format version 99 is not supported by this spritegen (reads 1, 2)",
        dataset(set_attr("format_version", 99)),
    ),
    Case(
        "info-incomplete",
        ["info", "data.h5"],
        "did not complete",
        dataset(set_attr("complete", False)),
    ),
    Case(
        "info-no-metadata",
        ["info", "data.h5"],
        "dataset '/metadata/factor_names' is missing",
        dataset(delete("metadata")),
    ),
    Case(
        "show-no-metadata",
        ["show", "data.h5"],
        "'/metadata/factor_names' is missing",
        dataset(delete("metadata")),
    ),
    Case(
        "verify-no-checksums",
        ["verify", "data.h5"],
        "dataset '/checksums/images' is missing",
        dataset(delete("checksums")),
    ),
    Case(
        "verify-checksums-scalar",
        ["verify", "data.h5"],
        "'/checksums/images' has shape (); expected (chunks, 32)",
        dataset(replace("checksums/images", 1)),
    ),
    Case(
        "info-short-metadata",
        ["info", "data.h5"],
        "'/metadata/factor_low' has shape (1,); expected one entry per factor column",
        dataset(replace("metadata/factor_low", [0.0])),
    ),
    Case(
        "info-no-spec-attr",
        ["info", "data.h5"],
        "attribute 'spec' is missing",
        dataset(del_attr("spec")),
    ),
    Case(
        "info-bad-json-attr",
        ["info", "data.h5"],
        "attribute 'renderer_info' is not a JSON object",
        dataset(set_attr("renderer_info", "{oops")),
    ),
    Case(
        "verify-spec-not-text",
        ["verify", "data.h5"],
        "attribute 'spec' is not YAML text (found 5)",
        dataset(set_attr("spec", 5)),
    ),
    # --- attributes of the wrong type: each read is type-checked, never truth-tested
    Case(
        "info-complete-array",
        ["info", "data.h5"],
        "attribute 'complete' is [True, True]; expected a boolean",
        dataset(set_attr("complete", np.array([True, True]))),
    ),
    Case(
        "verify-complete-no",
        ["verify", "data.h5"],
        "attribute 'complete' is 'no'; expected a boolean (True once the build finished)",
        dataset(set_attr("complete", "no")),
    ),
    Case(
        "info-complete-1",
        ["info", "data.h5"],
        "attribute 'complete' is 1; expected a boolean",
        dataset(set_attr("complete", 1)),
    ),
    Case(
        "info-format-array",
        ["info", "data.h5"],
        "not a spritegen dataset (attribute 'format' is ['spritegen-dataset', 'x'], expected",
        dataset(
            set_attr("format", np.array(["spritegen-dataset", "x"], dtype=h5py.string_dtype()))
        ),
    ),
    Case(
        "info-version-void",
        ["info", "--json", "data.h5"],
        "attribute 'package_version' is not text (found b'\\x00\\x01')",
        dataset(set_attr("package_version", np.void(b"\x00\x01"))),
    ),
    Case(
        "show-seed-negative",
        ["show", "data.h5"],
        "attribute 'seed' is not an integer >= 0 (found -3)",
        dataset(set_attr("seed", -3)),
    ),
    Case(
        "info-renderer-4d",
        ["info", "data.h5"],
        "attribute 'renderer' is not '2d' or '3d' (found '4d')",
        dataset(set_attr("renderer", "4d")),
    ),
    Case(
        "verify-digest-not-hex",
        ["verify", "data.h5"],
        "attribute 'content_sha256' is not 64 lowercase hexadecimal digits (a SHA-256) (found",
        dataset(set_attr("content_sha256", "z" * 64)),
    ),
    # --- arrays that disagree with each other or with the stored spec
    Case(
        "show-no-training-images",
        ["show", "data.h5"],
        "dataset '/images' has 0 rows but '/factors' has 1000; expected one factor row per image",
        dataset(empty_images),
    ),
    Case(
        "show-short-factors",
        ["show", "data.h5"],
        "dataset '/images' has 1000 rows but '/factors' has 10; expected one factor row",
        dataset(lambda f: replace("factors", f["factors"][:10])(f)),
    ),
    Case(
        "show-spec-3-factors",
        ["show", "data.h5"],
        "dataset '/factors' has 2 factor columns but the stored spec has factors: 3",
        dataset(set_attr("spec", "factors: 3\n")),
    ),
    Case(
        "info-spec-other-n",
        ["info", "data.h5"],
        "dataset '/images' has 1000 rows but the stored spec has n: 999",
        dataset(edit_spec("\nn: 1000\n", "\nn: 999\n")),
    ),
    Case(
        "info-spec-other-size",  # verify reports it among its FAIL lines (tests/test_verify.py)
        ["info", "data.h5"],
        "dataset '/images' has shape (1000, 64, 64, 1); the stored spec makes images of "
        "(H, W, C) = (32, 32, 1)",
        dataset(edit_spec("image_size: 64\n", "image_size: 32\n")),
    ),
    Case(
        "info-short-eval-factors",  # verify reports it among its FAIL lines (tests/test_verify.py)
        ["info", "data.h5"],
        "dataset '/eval/variance/images' has 300 rows but '/eval/variance/factors' has 299",
        dataset(lambda f: replace("eval/variance/factors", f["eval/variance/factors"][1:])(f)),
    ),
    Case(
        "info-factors-group",
        ["info", "data.h5"],
        "'/factors' is a group, not a dataset",
        dataset(lambda f: (f.__delitem__("factors"), f.create_group("factors"))),
    ),
    Case(
        "show-spec-unparseable",
        ["show", "data.h5"],
        "its stored spec is unreadable",
        dataset(set_attr("spec", "factors: [\n")),
    ),
    Case(
        "show-corrupt-chunk",
        ["show", "data.h5"],
        "data.h5: /images rows 0..255 (chunk 0) cannot be read (corrupt compressed data); run "
        "`spritegen verify data.h5`",
        dataset(corrupt_first_chunk),
    ),
    # --- show's pictures never replace the dataset, nor any file that is not a PNG
    Case(
        "show-out-is-input",
        ["show", "data.h5", "--out", "data.h5"],
        "--out 'data.h5': would overwrite the dataset being shown ('data.h5')",
        dataset(),
    ),
    Case(
        "show-out-is-input-by-other-path",
        ["show", "data.h5", "--out", "sub/../data.h5"],
        "--out 'sub/../data.h5': would overwrite the dataset being shown",
        lambda folder, data: (dataset()(folder, data), (folder / "sub").mkdir()),
    ),
    Case(
        "show-out-symlink-to-input",
        ["show", "data.h5", "--out", "link.png"],
        "--out 'link.png': would overwrite the dataset being shown",
        lambda folder, data: (dataset()(folder, data), os.symlink("data.h5", folder / "link.png")),
    ),
    Case(
        "show-out-other-dataset",
        ["show", "data.h5", "--out", "v.h5"],
        "--out 'v.h5': exists and is not a PNG image (it starts with b'\\x89HDF\\r\\n\\x1a\\n')",
        lambda folder, data: (dataset()(folder, data), shutil.copy(data, folder / "v.h5")),
    ),
    # --- show names what it writes *.png: a new x.h5, x.jpg or bare x is refused, not a PNG
    Case(
        "show-out-new-h5",
        ["show", "data.h5", "--out", "x.h5"],
        "--out 'x.h5': show writes PNG files only, not .h5; give a name ending in .png "
        "('x.png'), or a folder (an existing one, or a path ending in '/')",
        dataset(),
    ),
    Case(
        "show-out-new-jpg-in-a-folder",
        ["show", "data.h5", "--out", "pics/x.jpg"],
        "--out 'pics/x.jpg': show writes PNG files only, not .jpg; give a name ending in .png "
        "('pics/x.png')",
        lambda folder, data: (dataset()(folder, data), (folder / "pics").mkdir()),
    ),
    Case(
        "show-out-bare-name",
        ["show", "data.h5", "--out", "x"],
        "--out 'x': neither a .png file name nor an existing folder; give 'x.png' for a file, "
        "or 'x/' for a new folder",
        dataset(),
    ),
    Case(
        "show-out-precious",
        ["show", "data.h5", "--out", "precious.png"],
        "--out 'precious.png': exists and is not a PNG image (it starts with b'precious'); "
        "show replaces only PNG files",
        lambda folder, data: (
            dataset()(folder, data),
            spec("precious text", "precious.png")(folder, data),
        ),
    ),
    Case(
        "show-sweep-out-precious",
        ["show", "data.h5"],
        "--out 'grid-sweep.png': exists and is not a PNG image",
        lambda folder, data: (dataset()(folder, data), spec("", "grid-sweep.png")(folder, data)),
    ),
    Case(
        "show-out-empty",
        ["show", "data.h5", "--out", ""],
        "--out '': an empty path; give a PNG file name (default 'grid.png') or a folder",
        dataset(),
    ),
    Case(
        "show-out-fifo",
        ["show", "data.h5", "--out", "fifo"],
        "--out 'fifo': exists and is not a regular file",
        lambda folder, data: (dataset()(folder, data), fifo(folder, data)),
    ),
    # --- damaged HDF5 metadata: HDF5 opens the file, then cannot walk its objects
    Case(
        "info-bad-heap-free-list",
        ["info", "data.h5"],
        "data.h5: the file is damaged: HDF5 cannot read its structure (",
        flip_structure(b"HEAP", 16),
    ),
    Case(
        "verify-bad-btree-signature",
        ["verify", "data.h5"],
        "(wrong B-tree signature)); rebuild it with 'spritegen build'",
        flip_structure(b"TREE", 0),
    ),
    Case(
        "show-bad-global-heap",
        ["show", "data.h5"],
        "data.h5: the file is damaged: HDF5 cannot read its structure (",
        flip_structure(b"GCOL", 8),
    ),
    Case(
        "info-bad-group-btree",
        ["info", "data.h5"],
        "data.h5: the file is damaged: HDF5 cannot read its structure (",
        flip_structure(b"TREE", 0, nth=1),
    ),
    # --- paths that are not regular files: not "missing", and HDF5 never sees them
    Case(
        "spec-fifo",
        ["build", "fifo"],
        "spec file 'fifo' is not a regular file (a device, pipe or socket)",
        fifo,
    ),  # reading it waited for a writer forever
    Case(
        "spec-dev-null",
        ["build", "/dev/null"],
        "spec file '/dev/null' is not a regular file",
    ),  # read as an empty spec: "a spec must be a YAML mapping of fields, got NoneType"
    Case("info-dev-null", ["info", "/dev/null"], "/dev/null: not a regular file"),
    Case("verify-dev-zero", ["verify", "/dev/zero"], "/dev/zero: not a regular file"),
    Case(
        "info-fifo", ["info", "fifo"], "fifo: not a regular file (a device, pipe or socket)", fifo
    ),
]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
    }


def run_in(folder: Path, argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_input_gets_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys, dataset_k2):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    if case.setup is not None:
        case.setup(folder, dataset_k2)
    before = snapshot(folder)
    code, _out, err = run_in(folder, case.argv, capsys)
    assert code == 2, (case.argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spritegen: error: "), err
    assert case.expect in lines[0], (case.expect, lines[0])
    assert len(lines[0]) < 600
    assert "Traceback" not in err
    assert snapshot(folder) == before


def test_a_stored_2d_spec_with_rotation_y_stays_readable(tmp_path, monkeypatch, capsys, dataset_k2):
    """A 2D file built before fixed.rotation_y had to be 0 there (its stored spec and metadata
    say 1.0) is read as it was: the new rule applies to specs to build, not to stored ones."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "old.h5"
    shutil.copy(dataset_k2, path)
    with h5py.File(path, "r+") as f:
        edit_spec("rotation_y: 0.0", "rotation_y: 1.0")(f)
        values = f["metadata/inactive_factor_values"][()]
        values[-1] = 1.0
        replace("metadata/inactive_factor_values", values)(f)
    code, out, err = run_in(tmp_path, ["info", "old.h5"], capsys)
    assert code == 0, err
    assert "rotation_y=1.0" in out, out


def test_no_command_prints_the_whole_help(tmp_path, monkeypatch, capsys):
    """Not an error line squashing the help into one: the help as ``spritegen --help`` shows it."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in(tmp_path, [], capsys)
    assert code in (0, 2), err
    text = err + out
    assert text.startswith("Usage: spritegen [OPTIONS] COMMAND [ARGS]..."), text
    assert "spritegen: error" not in text and len(text.splitlines()) > 8
    assert "\nCommands:\n" in text and "\n  build " in text
    assert list(tmp_path.iterdir()) == []


def test_build_help_states_the_real_caps_and_spec_defaults(capsys):
    code, out, _err = run_in(Path("."), ["build", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0
    assert f"[1<=x<={MAX_IMAGES}]" in text and f"[0<=x<={MAX_SEED}]" in text
    assert "(default: the spec's, else 1,000,000)" in text
    assert "(default: the spec's, else full)" in text
    assert "(default: the spec's, else 64)" in text


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("command", ["build", "show"])
def test_read_only_folder_gets_one_line(
    command, read_only, tmp_path, capsys, monkeypatch, dataset_k2
):
    """A read-only file system (the ``read_only`` fixture mounts a real one)."""
    monkeypatch.chdir(tmp_path)
    args, expected = {
        "build": (
            BUILD + ["--factors", "2", "--out", "ro/x.h5"],
            f"--out 'ro/x.h5': cannot write in {read_only}: Read-only file system; choose a "
            "folder you can write to",
        ),
        "show": (
            ["show", str(dataset_k2), "--out", "ro/x.png"],
            "--out 'ro/x.png': cannot write the picture (Read-only file system); choose "
            "another --out",
        ),
    }[command]
    code, _out, err = run_in(tmp_path, args, capsys)
    assert code == 2
    assert err == f"spritegen: error: {expected}\n"
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize("case_id", ["alias-bomb", "hdf5-spec", "dup-key", "n-0"])
def test_the_installed_command_prints_the_same_line(case_id, tmp_path, dataset_k2):
    """The same cases through a real process (console entry point, exit status, streams)."""
    case = next(c for c in CASES if c.id == case_id)
    if case.setup is not None:
        case.setup(tmp_path, dataset_k2)
    before = snapshot(tmp_path)
    # The spritegen these tests import (a checkout may differ from the one installed).
    source = str(Path(spritegen.__file__).parents[1])
    result = subprocess.run(
        [sys.executable, "-m", "spritegen", *case.argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": source},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and case.expect in result.stderr
    assert snapshot(tmp_path) == before


def test_show_writes_into_a_folder_and_replaces_only_its_own_pngs(
    tmp_path, monkeypatch, capsys, dataset_k2
):
    """--out DIR/ (or an existing folder) means DIR/grid.png and DIR/grid-sweep.png; a second
    run replaces those PNGs with the same bytes."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run_in(tmp_path, ["show", str(dataset_k2), "--out", "o/new/"], capsys)
    assert code == 0, err
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert made == ["o", "o/new", "o/new/grid-sweep.png", "o/new/grid.png"], made
    first = {p: (tmp_path / p).read_bytes() for p in made[2:]}
    assert all(data.startswith(b"\x89PNG\r\n\x1a\n") for data in first.values())
    code, out, err = run_in(tmp_path, ["show", str(dataset_k2), "--out", "o/new"], capsys)
    assert code == 0, err
    assert {p: (tmp_path / p).read_bytes() for p in made[2:]} == first
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == made
    # a file name ends in .png, in any case; the sweep keeps its suffix
    code, out, err = run_in(tmp_path, ["show", str(dataset_k2), "--out", "o/Big.PNG"], capsys)
    assert code == 0, err
    assert (tmp_path / "o/Big.PNG").read_bytes() == first["o/new/grid.png"]
    assert (tmp_path / "o/Big-sweep.PNG").read_bytes() == first["o/new/grid-sweep.png"]


def test_show_asked_for_more_samples_than_the_file_holds_says_it_shows_them_all(
    tmp_path, monkeypatch, capsys, dataset_k2
):
    """--samples above the file's image count draws every image once, and says so in one
    warning line instead of quietly drawing a smaller grid; the default (64) on a smaller file
    draws them all without a word, as nobody asked for 64."""
    monkeypatch.chdir(tmp_path)
    args = ["show", str(dataset_k2), "--out", "all.png"]
    code, _out, err = run_in(tmp_path, args + ["--samples", "1024"], capsys)
    assert code == 0, err
    assert err == (
        "spritegen: warning: --samples 1024: the file holds 1000 images; the grid shows all 1000\n"
    )
    every = (tmp_path / "all.png").read_bytes()
    code, _out, err = run_in(tmp_path, args + ["--samples", "1000"], capsys)
    assert code == 0 and err == ""
    assert (tmp_path / "all.png").read_bytes() == every
    small = make_tiny_dataset(tmp_path / "small.h5", n=20, seed=1, eval_preset="none")
    code, _out, err = run_in(tmp_path, ["show", str(small), "--out", "small.png"], capsys)
    assert code == 0 and err == ""
    default = (tmp_path / "small.png").read_bytes()
    code, _out, err = run_in(
        tmp_path, ["show", str(small), "--out", "small.png", "--samples", "20"], capsys
    )
    assert code == 0 and err == "" and (tmp_path / "small.png").read_bytes() == default


def test_info_json_prints_attributes_of_any_type(tmp_path, monkeypatch, capsys, dataset_k2):
    """Attributes no reader relies on may hold anything HDF5 stores; --json still prints."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(dataset_k2, tmp_path / "data.h5")
    with h5py.File(tmp_path / "data.h5", "r+") as f:
        f.attrs["note"] = np.void(b"\x00\xff")
        f.attrs["pairs"] = np.array([1 + 2j, 3j])
    code, out, err = run_in(tmp_path, ["info", "--json", "data.h5"], capsys)
    assert code == 0, err
    assert json.loads(out)["path"] == "data.h5"
    with h5py.File(tmp_path / "data.h5", "r") as f:
        attrs = read_attrs(f)
    assert attrs["note"] == "00ff" and attrs["pairs"] == ["(1+2j)", "3j"]
    json.dumps(attrs)


@pytest.mark.parametrize("command", ["info", "verify"])
def test_a_file_open_for_writing_elsewhere_is_in_use_not_corrupt(
    command, tmp_path, monkeypatch, capsys, dataset_k2
):
    """HDF5 locks a file while a process has it open for writing; a reader then gets "unable to
    lock file", which must not read as a corrupt file (an invitation to delete a good one)."""
    monkeypatch.delenv("HDF5_USE_FILE_LOCKING", raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(dataset_k2, tmp_path / "data.h5")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import h5py, sys; f = h5py.File('data.h5', 'r+'); print('open', flush=True); "
            "sys.stdin.read()",
        ],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        before = snapshot(tmp_path)
        code, _out, err = run_in(tmp_path, [command, "data.h5"], capsys)
        assert snapshot(tmp_path) == before
    finally:
        holder.communicate("")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spritegen: error: data.h5: in use by another")
    assert "not an HDF5 file" not in err and "HDF5_USE_FILE_LOCKING=FALSE" in err
    code, _out, err = run_in(tmp_path, ["info", "data.h5"], capsys)  # released: readable again
    assert code == 0, err


def test_mutated_specs_never_raise_anything_but_spec_errors():
    """Random byte edits of a valid spec: either a valid spec or a SpecError, never a crash."""
    rng = np.random.default_rng(0)
    base = (
        b"factors: 3\nname: x\nn: 500\nseed: 1\nfixed: {rotation: 0.5}\n"
        b"storage: {chunk_images: 64, compression: gzip}\nevaluation: {preset: tiny}\n"
    )
    alphabet = np.frombuffer(b"{}[]:,&*!-? #'\"\n\t0123456789abcxyz\\%|>@`", np.uint8)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(400):
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 6))):
            pos = int(rng.integers(0, len(data)))
            op = rng.integers(0, 3)
            if op == 0:
                data[pos] = int(rng.choice(alphabet))
            elif op == 1:
                del data[pos]
            else:
                data.insert(pos, int(rng.choice(alphabet)))
        try:
            parse_spec_text(data.decode("utf-8", errors="replace"), "fuzz.yaml")
            outcomes["ok"] += 1
        except SpecError as exc:
            assert len(str(exc).splitlines()) == 1 and len(str(exc)) < 600, str(exc)
            outcomes["error"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_quote_bounds_huge_and_nested_values():
    nested: list = ["x" * 10]
    for _ in range(30):
        nested = [nested] * 9  # 9**30 leaves if printed in full
    assert len(quote(nested)) <= 80
    assert quote("short") == "'short'"
    assert quote("y" * 1000).endswith("...") and len(quote("y" * 1000)) == 80


def test_quote_survives_values_nested_deeper_than_the_stack():
    deep_list: list = []
    deep_dict: dict = {}
    for _ in range(100_000):
        deep_list, deep_dict = [deep_list], {"a": deep_dict}
    assert quote(deep_list) == "[" * 77 + "..."
    assert quote(deep_dict).startswith("{'a': {'a':") and len(quote(deep_dict)) == 80
    assert len(quote(deep_list, limit=100_000)) < 1000  # a large limit still stops early


def test_nesting_up_to_the_limit_parses_and_one_more_level_is_refused():
    nested = "x: " + "[" * (MAX_SPEC_DEPTH - 1) + "]" * (MAX_SPEC_DEPTH - 1)
    assert load_yaml_strict(nested) is not None
    with pytest.raises(SpecError, match="nested more than"):
        load_yaml_strict("x: " + "[" * MAX_SPEC_DEPTH + "]" * MAX_SPEC_DEPTH)


@pytest.mark.parametrize("section", ["fixed", "storage"])
@pytest.mark.parametrize("empty", ["", " {}", " null"])
def test_an_empty_or_null_section_still_means_the_defaults(section, empty):
    plain = parse_spec_text("factors: 2\n")
    assert parse_spec_text(f"factors: 2\n{section}:{empty}\n") == plain


def test_default_chunks_fit_the_chunk_cap_at_every_size():
    for factors in range(1, 8):
        for size in (16, 64, 256, 1024):
            spec = with_overrides(default_spec(factors), {"image_size": size})
            assert spec.chunk_images * size * size * spec.channels <= MAX_CHUNK_BYTES


try:  # property-based generation when hypothesis is installed (the test extra)
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - depends on the environment
    given = None

if given is not None:
    _scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=20),
        st.sampled_from(["2d", "3d", "gzip", "none", "tiny", "full", "hue", "shape", "rotation"]),
    )
    _values = st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=8,
    )
    _keys = st.sampled_from(
        ["format", "name", "factors", "renderer", "image_size", "n", "seed", "fixed"]
    ) | st.text(max_size=8)
    _sections = st.fixed_dictionaries(
        {},
        optional={
            "storage": st.dictionaries(
                st.sampled_from(["chunk_images", "compression", "compression_level", "level"]),
                _values,
            ),
            "evaluation": _values
            | st.dictionaries(
                st.sampled_from(["preset", "batch_size", "variance", "higgins_eval", "x"]), _values
            ),
            "fixed": st.dictionaries(
                st.sampled_from(["pos_x", "scale", "shape", "rotation", "hue", "rotation_y"]),
                _values,
            ),
            "factors": st.integers(0, 8) | _values,
        },
    )
    _specs = st.builds(
        lambda a, b: {**a, **b}, st.dictionaries(_keys, _values, max_size=4), _sections
    )

    @settings(max_examples=100, deadline=None)
    @given(_specs)
    def test_any_spec_mapping_is_valid_or_gets_one_line(raw):
        """Generated specs, as mappings and as YAML text: a DatasetSpec or one SpecError line."""
        import yaml

        from spritegen.spec import spec_from_mapping

        for attempt in (
            lambda: spec_from_mapping(raw),
            lambda: parse_spec_text(yaml.safe_dump(raw), "generated.yaml"),
        ):
            try:
                attempt()
            except SpecError as exc:
                message = str(exc)
                assert len(message.splitlines()) == 1 and len(message) < 600, message


# probe of 2026-12-01

PROBE_2026_12_01 = [
    # a /metadata table rewritten with h5py: every reader (info, show, bench) printed it
    Case(
        "info-metadata-names",
        ["info", "data.h5"],
        "data.h5: /metadata/factor_names is ['foo', 'bar']; the stored spec gives ['pos_x', "
        "'pos_y']; the file was changed since the build: run `spritegen verify data.h5`",
        dataset(replace("metadata/factor_names", np.array(["foo", "bar"], h5py.string_dtype()))),
    ),
    Case(
        "show-metadata-low-nan",
        ["show", "data.h5"],
        "data.h5: /metadata/factor_low is [nan, 0.0]; the stored spec gives [0.0, 0.0]",
        dataset(replace("metadata/factor_low", np.array([np.nan, 0.0]))),
    ),
    Case(
        "info-metadata-kinds",
        ["info", "data.h5"],
        "/metadata/factor_kinds is ['weird', 'continuous']",
        dataset(
            replace("metadata/factor_kinds", np.array(["weird", "continuous"], h5py.string_dtype()))
        ),
    ),
    # OUT.lock and OUT.partial that no build left: the build overwrote, then removed them
    Case(
        "build-user-lock",
        BUILD + ["--factors", "2", "--out", "z.h5"],
        "z.h5.lock is in the way: the build keeps its lock (a process id) under that name, but "
        "this file is not one a build left (it starts with b'my notes\\n'); move or rename it, "
        "or build to another --out",
        spec("my notes\n", "z.h5.lock"),
    ),
    Case(
        "build-user-partial",
        BUILD + ["--factors", "2", "--out", "q.h5", "--force"],
        "q.h5.partial is in the way: the build keeps the file it assembles under that name, but "
        "this file is not one a build left (it starts with b'draft'); move or rename it",
        spec("draft", "q.h5.partial"),
    ),
]


@pytest.mark.parametrize("case", PROBE_2026_12_01, ids=[c.id for c in PROBE_2026_12_01])
def test_probe_2026_12_01_gets_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys, dataset_k2):
    test_malformed_input_gets_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys, dataset_k2)


def test_only_a_builds_own_lock_and_partial_are_taken_over(tmp_path, monkeypatch, capsys):
    """A user's ``OUT.lock`` is kept (the build wrote its pid over it, then deleted it); what a
    killed build leaves is still its own: a lock naming a (dead) pid, an empty one, an empty
    ``OUT.partial`` or one HDF5 began; the next build replaces them and finishes."""
    monkeypatch.chdir(tmp_path)
    argv = ["build", "--quiet", "--factors", "1", "--n", "10", "--eval-preset", "none"]
    (tmp_path / "ref.h5.lock").write_text("12 notes\n")
    code, _out, err = run_in(tmp_path, [*argv, "--out", "ref.h5"], capsys)
    assert code == 2 and "ref.h5.lock is in the way" in err, err
    assert (tmp_path / "ref.h5.lock").read_text() == "12 notes\n"
    (tmp_path / "ref.h5.lock").unlink()
    code, _out, err = run_in(tmp_path, [*argv, "--out", "ref.h5"], capsys)
    assert code == 0, err
    leftovers = {
        "a.h5": ("99999999\n", b""),
        "b.h5": ("", (tmp_path / "ref.h5").read_bytes()[:96]),
    }
    for name, (lock, partial) in leftovers.items():
        (tmp_path / f"{name}.lock").write_text(lock)
        (tmp_path / f"{name}.partial").write_bytes(partial)
        code, _out, err = run_in(tmp_path, [*argv, "--out", name], capsys)
        assert code == 0, err
        assert (tmp_path / name).read_bytes() == (tmp_path / "ref.h5").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "ref.h5"]
