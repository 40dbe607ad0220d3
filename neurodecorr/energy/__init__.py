"""Energy: operation counters filled by the engine and its device, priced by the profile."""

from neurodecorr.devices.profile import PRICE_KEYS
from neurodecorr.energy.cost import (
    OPERATION_MODELS,
    PricingError,
    build_report,
    format_report,
    joules,
    missing_prices,
    operations,
    required_prices,
)
from neurodecorr.energy.counters import KINDS, PHASES, TRAINING_PHASES, Counts

__all__ = ["Counts", "KINDS", "PHASES", "TRAINING_PHASES", "PRICE_KEYS", "PricingError",
           "build_report", "format_report", "joules", "missing_prices", "operations", "required_prices",
           "OPERATION_MODELS"]
