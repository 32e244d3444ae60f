"""``bench run``: train one model on one dataset and write its run folder.

The options are derived from the parameter table (``benchmark.params.RunConfig``); model
hyperparameters are whatever the chosen model's constructor takes, given as ``--NAME VALUE``
(``--beta 8``, ``--beta-norm 0.1``, a plugin's ``--alpha 2``) or ``--param NAME=VALUE``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import click
import yaml

from benchmark.params import ParamInfo, RunConfig, iter_cli_params
from spritegen.clitools import user_errors
from spritegen.errors import SpecError
from spritegen.spec import load_yaml_strict


def parse_value(text: str, where: str = "value") -> Any:
    """A value given on the command line, read as YAML: 8, 0.5, true, null, text; also inf and
    nan as numbers (YAML spells them .inf and .nan), so they are refused as numbers, by name.

    Read by the project's strict loader, as specs are: anchors, aliases, duplicate keys and deep
    nesting are a SpecError naming ``where`` (deep nesting would exhaust Python's stack); text
    that is not YAML at all stays text."""
    try:
        value = load_yaml_strict(text, where)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """--param key=value (value read as YAML: 8, 0.5, true, null, text)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise SpecError(f"--param {item!r}: expected key=value with a Python identifier key")
        out[key] = parse_value(value, f"--param {key}")
    return out


def parse_hparam_flags(args: list[str]) -> dict[str, Any]:
    """The arguments click did not recognise, read as model hyperparameters: ``--beta 8``,
    ``--beta-norm=0.1``. Anything else is a bad flag."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise SpecError(f"unexpected argument {arg!r}; options start with --")
        flag, eq, value = arg.partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise SpecError(f"{flag} needs a value (a model hyperparameter: {flag} VALUE)")
            value = args[i + 1]
            i += 1
        key = flag[2:].replace("-", "_")
        if not key.isidentifier():
            raise SpecError(f"{flag}: not a valid option name")
        if key in out:
            raise SpecError(f"{flag} given twice")
        out[key] = parse_value(value, flag)
        i += 1
    return out


def hparam_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def unknown_hparam(key: str, model: str, accepted: list[str]) -> str:
    """Why ``--KEY`` was refused, with the nearest flag when there is one: every flag bench run
    does not know is read as a model hyperparameter, so a mistyped option of its own (``--stpes``)
    was only "not a parameter of model 'vae'; it accepts: none"."""
    names = {hparam_flag(k)[2:]: "a parameter of the model" for k in accepted}
    names |= {p.flag[2:]: "an option of bench run" for p in iter_cli_params()}
    names["param"] = "an option of bench run"
    close = difflib.get_close_matches(hparam_flag(key)[2:], list(names), n=1, cutoff=0.7)
    hint = f"; did you mean --{close[0]} ({names[close[0]]})?" if close else ""
    allowed = ", ".join(hparam_flag(k) for k in accepted) or "none"
    return f"{hparam_flag(key)} is not a parameter of model {model!r}; it accepts: {allowed}{hint}"


def _option(p: ParamInfo) -> Callable[[Callable], Callable]:
    if p.flag_kind == "switch":
        return click.option(p.flag, p.name, is_flag=True, help=p.help)
    if p.flag_kind == "inverted":
        return click.option(p.flag, p.name, flag_value=False, default=True, help=p.help)
    check = getattr(p.check, "inner", p.check)
    choices = getattr(check, "choices", None)
    kind: Any = click.Choice(list(choices)) if choices else None
    if kind is None and p.default is not None:
        kind = type(p.default)
    elif kind is None:
        kind = {"positive_int": int, "non_negative_int": int, "factors_count": int}.get(
            check.__name__, str
        )
    return click.option(
        p.flag,
        p.name,
        type=kind,
        default=p.default,
        show_default=p.default is not None,
        help=p.help,
    )


def run_options(command: Callable) -> Callable:
    """Add one click option per command-line row of the parameter table."""
    for p in reversed(list(iter_cli_params())):
        command = _option(p)(command)
    return command


def print_table(summary: dict) -> None:
    from benchmark.run import SCORE_KEYS

    final = summary.get("final", {})
    rows = [("epochs / steps", f"{summary['epochs']} / {summary['steps']}")]
    rows += [(k, f"{v:.4g}") for k, v in final.items()]
    best = summary.get("best_scores", {})
    for k, v in summary.get("final_scores", {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k in SCORE_KEYS:
            extra = (
                f"   (best {best[k]['value']:z.3f} @ epoch {best[k]['epoch']})" if k in best else ""
            )
            rows.append((k, f"{v:z.3f}{extra}"))
    if not summary.get("final_scores"):
        rows.append(("scores", "not computed (no metrics installed, or presets 'none')"))
    width = max(len(r[0]) for r in rows)
    click.echo(f"run {summary['model']} {summary['model_hparams']} -> {summary['out']}")
    for k, v in rows:
        click.echo(f"  {k:<{width}}  {v}")


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@run_options
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A model hyperparameter (also --KEY VALUE, e.g. --beta 8); repeatable.",
)
@click.pass_context
def run_command(ctx: click.Context, params: tuple[str, ...], **values: Any) -> None:
    """Train MODEL on a dataset, score it after every epoch and write a run folder.

    Model hyperparameters are the model's constructor arguments (see `bench models`), given as
    --NAME VALUE or --param NAME=VALUE.
    """
    from benchmark.models.registry import get_entry
    from benchmark.run import run

    with user_errors("bench"):
        hparams = parse_params(params)
        for key, value in parse_hparam_flags(list(ctx.args)).items():
            if key in hparams:
                raise SpecError(f"{hparam_flag(key)} and --param {key}=... both given")
            hparams[key] = value
        if values.get("model") is None:
            raise SpecError("--model is required (see `bench models`)")
        entry = get_entry(values["model"])
        for key in hparams:
            if key not in entry.hparams and not entry.accepts_any:
                raise SpecError(unknown_hparam(key, entry.name, list(entry.hparams)))
        cfg = RunConfig(**{**values, "hparams": hparams})
        summary = run(cfg)
    print_table(summary)
