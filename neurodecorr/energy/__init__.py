"""Energy: operation counters filled by the engine and its device, priced by the profile."""

from .counters import KINDS, PHASES, TRAINING_PHASES, Counts
from .cost import (OPERATION_MODELS, PRICE_KEYS, PricingError, build_report, format_report,
                   joules, operations, required_prices)

__all__ = ["Counts", "KINDS", "PHASES", "TRAINING_PHASES", "PRICE_KEYS", "PricingError",
           "build_report", "format_report", "joules", "operations", "required_prices",
           "OPERATION_MODELS"]
