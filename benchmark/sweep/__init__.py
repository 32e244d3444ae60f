"""Sweeps: many `bench run` points from one YAML spec, trained locally or on Ray, resumable.

spec = load_sweep_spec("specs/experiment1.yaml")
result = run_sweep(spec, out="results/experiment1", executor="local", workers=2)
"""

from benchmark.sweep.points import Point, expand, run_id
from benchmark.sweep.runner import SweepResult, format_summary, run_sweep
from benchmark.sweep.spec import SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = [
    "Point",
    "SweepResult",
    "SweepSpec",
    "expand",
    "format_summary",
    "load_sweep_spec",
    "parse_sweep_spec",
    "run_id",
    "run_sweep",
]
