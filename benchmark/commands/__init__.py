"""Bodies of the ``bench`` commands, one module each, registered on the group in benchmark.cli."""
