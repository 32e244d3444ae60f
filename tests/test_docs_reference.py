"""The commands, flags, names, paths and preset sizes that README.md and docs/ show are the code's.

Users copy ``spritegen ...`` and ``bench ...`` lines, ``benchmark.x.y`` names and repository paths
from the documentation; after a flag is renamed or a module moves, the page still shows the old
spelling. These tests read every fenced block and inline code span of the pages and check, without
running anything: each command's subcommand and ``--flags`` against its click definition (a
``bench run`` flag may also be a hyperparameter of the model its ``--model`` names), each literal
value of a flag against the flag's click type (``--executor local|ray`` against its choices), each
dotted ``spritegen.`` / ``benchmark.`` name by importing it, and each path under ``specs/``,
``scripts/``, ``benchmarks/``, ``docs/`` and ``tests/`` on disk; and the preset tables of
docs/specs.md and docs/metrics.md against the preset constants. The Python examples themselves
run in tests/test_docs_examples.py.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import click
import pytest

from benchmark.cli import bench
from benchmark.models.registry import discover
from spritegen.cli import cli as spritegen_cli

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROGRAMS: dict[str, click.Group] = {"spritegen": spritegen_cli, "bench": bench}

#: (document, dotted name) -> why a name the page shows may not resolve; a listed name that
#: resolves again fails the suite, so the list cannot go stale.
UNRESOLVED: dict[tuple[str, str], str] = {}

#: A value that stands for what the user writes (N, DIR, MODULE:FUNCTION, KEY=VALUE, <id>).
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*([:=][A-Z][A-Z0-9_]*)?$|[<>$~]|\.\.\.|…")
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")


def _located(pattern: re.Pattern[str], text: str) -> list[tuple[int, str]]:
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in pattern.finditer(text)]


def command_lines() -> list[tuple[str, int, str]]:
    """(document, line, command) for every spritegen/bench command in a fenced block or a code
    span; ``a && b`` gives two, shell comments are dropped."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        candidates = []
        for line, block in _located(FENCE, text):
            candidates += [(line + 1 + i, row) for i, row in enumerate(block.splitlines())]
        candidates += _located(SPAN, text)
        for line, row in candidates:
            row = re.split(r"\s#", row.strip().removeprefix("$ "))[0]
            for command in re.split(r"&&|;", row):
                words = command.split()
                if len(words) > 1 and words[0] in PROGRAMS:
                    found.append((document.name, line, command.strip()))
    return found


def _tokens(command: str) -> list[str]:
    """The words of a usage line, its [optional] brackets and | separators taken away."""
    words = command.replace("[", " ").replace("]", " ").split()
    return [w for w in words if w not in ("|", "...", "…")]


def _hparam_flags(model: str | None) -> set[str] | None:
    """The flags of ``model``'s constructor arguments (of every installed model's when no
    ``--model`` is shown); None when it is not installed (a page's plugin example), whose flags
    cannot be checked."""
    if model is None:
        names = {n for e in MODELS.values() if e.ok for n in e.hparams}
    else:
        entry = MODELS.get(model)
        if entry is None or not entry.ok or entry.accepts_any:
            return None
        names = set(entry.hparams)
    return {"--" + name.replace("_", "-") for name in names}


def _check_value(option: click.Option, value: str) -> str | None:
    """Why a literal value shown for ``option`` is refused by its click type, else None."""
    for alternative in value.split("|") if isinstance(option.type, click.Choice) else [value]:
        if PLACEHOLDER.search(alternative):
            continue
        try:
            option.type.convert(alternative, option, None)
        except click.BadParameter as exc:
            return f"{option.opts[0]} {alternative!r}: {exc.message}"
    return None


def command_problems(command: str) -> list[str]:
    """What in one command line the program does not accept."""
    program, word, *rest = _tokens(command)
    group = PROGRAMS[program]
    if word not in group.commands:
        return [] if not re.fullmatch(r"[a-z][a-z-]*", word) else [f"no command {word!r}"]
    cmd = group.commands[word]
    options = {name: p for p in cmd.params for name in (*p.opts, *p.secondary_opts)}
    options.update((name, None) for name in ("--help", "-h"))
    model = rest[rest.index("--model") + 1] if "--model" in rest[:-1] else None
    problems = []
    i = 0
    while i < len(rest):
        flag, eq, value = rest[i].partition("=")
        i += 1
        if not flag.startswith("--"):
            continue
        if flag not in options:
            hparams = _hparam_flags(model) if word == "run" else set()
            if hparams is not None and flag not in hparams:
                problems.append(f"{flag} is not an option of {program} {word}")
            if not eq and i < len(rest) and not rest[i].startswith("--"):
                i += 1  # a hyperparameter's value
            continue
        option = options[flag]
        if not isinstance(option, click.Option) or option.is_flag:
            continue
        if not eq:
            if i >= len(rest) or rest[i].startswith("--"):
                continue  # the flag named alone, as prose does (`bench run --out`)
            value, i = rest[i], i + 1
        why = _check_value(option, value)
        if why:
            problems.append(why)
    return problems


MODELS = discover()
COMMANDS = command_lines()


def test_the_pages_show_commands():
    assert sum(doc == "README.md" for doc, _line, _command in COMMANDS) >= 10


@pytest.mark.parametrize(
    ("document", "line", "command"),
    COMMANDS,
    ids=[f"{doc}:{line}:{' '.join(command.split()[:2])}" for doc, line, command in COMMANDS],
)
def test_every_command_flag_and_value_exists(document, line, command):
    assert command_problems(command) == [], f"{document}:{line}: {command}"


def test_the_check_finds_drift():
    """The checker itself: a renamed flag, a value outside a choice, an unknown subcommand."""
    assert command_problems("bench sweep s.yaml --executor local|slurm") != []
    assert command_problems("spritegen build --factors 5 --num 10") != []
    assert command_problems("bench run --model betavae --gamma 4 --data f.h5") != []
    assert command_problems("bench train --model vae") != []
    assert command_problems("bench run --model betavae --beta 4 --data f.h5 --seed 0") == []
    assert command_problems("bench run --model myplugin --alpha 2 --data f.h5") == []
    assert command_problems("bench run --beta-norm 0.1 --lambda-od 5") == []
    assert command_problems("bench run --betta 4") != []
    assert command_problems("bench sweep SPEC [--out DIR] [--ensemble auto|off|N]") == []


def _dotted_names() -> list[tuple[str, int, str]]:
    found = []
    for document in DOCUMENTS:
        for line, span in _located(SPAN, document.read_text(encoding="utf-8")):
            for name in re.findall(r"\b((?:spritegen|benchmark)(?:\.[A-Za-z_]\w*)+)", span):
                if not name.endswith((".py", ".md", ".h5", ".yaml")):
                    found.append((document.name, line, name))
    return found


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_every_dotted_name_resolves():
    names = _dotted_names()
    missing = [
        f"{doc}:{line}: {name}"
        for doc, line, name in names
        if (doc, name) not in UNRESOLVED and not _resolves(name)
    ]
    assert missing == []
    stale = [key for key in UNRESOLVED if any(key == (d, n) for d, _l, n in names)]
    assert sorted(stale) == sorted(UNRESOLVED), "an UNRESOLVED name is no longer on its page"
    fixed = [key for key in UNRESOLVED if _resolves(key[1])]
    assert fixed == [], "these names resolve now: remove them from UNRESOLVED"


def _braces(path: str) -> list[str]:
    """``a/{b,c}.png`` -> ``a/b.png``, ``a/c.png``."""
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [
        p
        for alt in m.group(1).split(",")
        for p in _braces(path[: m.start()] + alt + path[m.end() :])
    ]


def test_every_repository_path_exists():
    missing = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for line, span in _located(SPAN, text) + _located(FENCE, text):
            for path in re.findall(
                r"(?<![\w/.-])((?:specs|scripts|benchmarks|docs|tests)/[\w./{},-]*)", span
            ):
                path = path.rstrip(".,;:")
                if "<" in path or "*" in path:
                    continue
                missing += [
                    f"{document.name}:{line}: {p}" for p in _braces(path) if not (ROOT / p).exists()
                ]
    assert missing == []


def _preset_rows(document: str) -> dict[str, list[list[int]]]:
    """The numeric cells of a page's preset table: preset name -> cells, each cell's integers
    (``10,000 / 5,000`` -> [10000, 5000])."""
    rows = {}
    for row in (ROOT / "docs" / document).read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(full|quick|tiny)`[^|]*\|(.*)\|\s*$", row)
        if m:
            cells = [c.strip() for c in m.group(2).split("|")]
            rows[m.group(1)] = [
                [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*", c)] for c in cells
            ]
    return rows


def test_the_preset_tables_give_the_sizes_of_the_code():
    """docs/specs.md and docs/metrics.md quote spritegen.spec.EVAL_PRESETS and the metric
    presets derived from it; the tiny row once said 5,440 images where a build renders 5,600."""
    from benchmark.metrics.presets import PRESETS
    from spritegen.spec import EVAL_PRESETS, EvalSizes

    specs = _preset_rows("specs.md")
    assert set(specs) == {"full", "quick", "tiny"}
    for name, cells in specs.items():
        p = EVAL_PRESETS[name]
        assert cells[:6] == [
            [p["batch_size"]],
            [p["variance"]],
            [p["kim_mnih_train"], p["kim_mnih_eval"]],
            [p["higgins_train"], p["higgins_eval"]],
            [p["random_train"], p["random_eval"]],
            [EvalSizes.preset(name).total_images],
        ], f"docs/specs.md, preset {name}"
    metrics = _preset_rows("metrics.md")
    assert set(metrics) == set(PRESETS)
    for name, cells in metrics.items():
        p = PRESETS[name]
        assert cells[:5] == [
            [p.batch_size],
            [p.num_train],
            [p.num_eval],
            [p.num_variance],
            [p.num_samples_train, p.num_samples_eval],
        ], f"docs/metrics.md, preset {name}"


def test_the_score_table_lists_every_score_key():
    """docs/metrics.md's table of scores names each key of benchmark.metrics.SCORE_KEYS once
    (linear_r2 and linear_r2_best_dim, recorded in every run's summary.json, were missing)."""
    from benchmark.metrics import SCORE_KEYS

    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    table = text.split("| key | metric | range |", 1)[1].split("\n\n", 1)[0]
    keys = [k for row in table.splitlines()[2:] for k in re.findall(r"`(\w+)`", row.split("|")[1])]
    assert sorted(keys) == sorted(SCORE_KEYS)
