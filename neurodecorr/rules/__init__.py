"""Learning rules: credit assignment (the modulators) and decorrelation (the R updates)."""

from neurodecorr.rules.base import CreditRule, DecorRule
from neurodecorr.rules.credit import CREDIT_RULES
from neurodecorr.rules.decorrelation import DECOR_NAMES, DECOR_RULES
from neurodecorr.rules.plasticity import local_outer

__all__ = ["CREDIT_RULES", "DECOR_RULES", "DECOR_NAMES", "CreditRule", "DecorRule", "local_outer"]
