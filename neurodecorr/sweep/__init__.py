"""Sweeps: grids of training runs on Dask, their results table, Pareto front and plots."""

from .results import aggregate, collect, pareto_front, report
from .runner import run_sweep
from .spec import Sweep, load_sweep

__all__ = ["Sweep", "load_sweep", "run_sweep", "report", "collect", "aggregate", "pareto_front"]
