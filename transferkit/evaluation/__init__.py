"""Evaluation: metrics, from-scratch baselines, the transfer verdict, and the HTML report."""

from .metrics import classification_metrics
from .verdict import transfer_verdict

__all__ = ["classification_metrics", "transfer_verdict"]
