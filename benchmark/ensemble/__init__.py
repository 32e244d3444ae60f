"""Train and score many models of one architecture at once (docs/training.md, "Ensembles").

``run_ensemble(configs) -> summaries`` is the entry; ``train_ensemble`` the bare loop;
``score_shared`` the batched scoring.
"""

from benchmark.encode import encode_all
from benchmark.ensemble.runner import SHARED, check_compatible, incompatibility, run_ensemble
from benchmark.ensemble.scoring import batched_scorer, score_shared
from benchmark.ensemble.stacked import StackedMembers, vmap_problem
from benchmark.ensemble.trainer import ENGINES, Member, pick_engine, train_ensemble

__all__ = [
    "ENGINES",
    "SHARED",
    "Member",
    "StackedMembers",
    "batched_scorer",
    "check_compatible",
    "encode_all",
    "incompatibility",
    "pick_engine",
    "run_ensemble",
    "score_shared",
    "train_ensemble",
    "vmap_problem",
]
