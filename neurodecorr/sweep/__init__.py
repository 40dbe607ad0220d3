"""Sweeps: grids of training runs on Dask, their results table, Pareto front and plots."""

from neurodecorr.sweep.results import aggregate, collect, pareto_front, report
from neurodecorr.sweep.runner import run_sweep
from neurodecorr.sweep.spec import Sweep, load_sweep

__all__ = ["Sweep", "load_sweep", "run_sweep", "report", "collect", "aggregate", "pareto_front"]
