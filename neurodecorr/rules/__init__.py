"""Learning rules: credit assignment (the modulators) and decorrelation (the R updates)."""

from .credit import CREDIT_RULES
from .decorrelation import DECOR_NAMES, DECOR_RULES
from .plasticity import local_outer

__all__ = ["CREDIT_RULES", "DECOR_RULES", "DECOR_NAMES", "local_outer"]
