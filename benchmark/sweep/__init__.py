"""Sweeps: many `bench run` points from one YAML spec, trained locally or on Ray, resumable.

plan = load_sweep("specs/experiment1.yaml")        # load and check, plan once
result = run_sweep(plan, out="results/experiment1", executor="local", workers=2)
"""

from benchmark.sweep.plan import Point, SweepPlan, load_sweep, plan_sweep, run_id
from benchmark.sweep.runner import SweepResult, format_summary, run_sweep
from benchmark.sweep.spec import SweepSpec, load_sweep_spec, parse_sweep_spec

__all__ = [
    "Point",
    "SweepPlan",
    "SweepResult",
    "SweepSpec",
    "format_summary",
    "load_sweep",
    "load_sweep_spec",
    "parse_sweep_spec",
    "plan_sweep",
    "run_id",
    "run_sweep",
]
