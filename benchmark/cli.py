"""The ``bench`` command line: each command's body lives in ``benchmark.commands``."""

from __future__ import annotations

import click

from benchmark.commands.models import models_command
from benchmark.commands.run import run_command


@click.group()
def main() -> None:
    """Train and score disentangled representation models on spritegen datasets."""


main.add_command(run_command, "run")
main.add_command(models_command, "models")


if __name__ == "__main__":
    main()
