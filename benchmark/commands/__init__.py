"""Bodies of the ``bench`` subcommands, one module each (registered in ``benchmark.cli``)."""
