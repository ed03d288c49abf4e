"""Strategies that train networks: two-stage fine-tuning and the from-scratch image baseline.

Feature extraction lives in :mod:`transferkit.estimators` / :mod:`transferkit.extraction`; every strategy
here trains through the one loop of :mod:`transferkit.training`.
"""

from .fine_tuning import FineTuneConfig, FineTuneResult, fine_tune, fine_tune_config, lr_find
from .from_scratch import SmallCNNClassifier

__all__ = ["FineTuneConfig", "FineTuneResult", "SmallCNNClassifier", "fine_tune", "fine_tune_config", "lr_find"]
