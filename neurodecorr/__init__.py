"""neurodecorr: train networks as neuromorphic chips would, with local decorrelation."""

__version__ = "0.1.0"

from neurodecorr.engine.config import TrainConfig  # noqa: E402
from neurodecorr.engine.trainer import TrainResult, train  # noqa: E402

__all__ = ["TrainConfig", "TrainResult", "train", "__version__"]
