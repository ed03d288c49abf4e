"""Strategies: the ways transferkit transfers a pretrained backbone, in one registry.

:mod:`~transferkit.strategies.base` holds the :class:`Strategy` interface and the registry
(:func:`register_strategy`, :func:`get_strategy`, :func:`strategy_names`); the built-in entries are
``feature-extraction`` (:mod:`.feature_extraction`), ``fine-tune`` (:mod:`.fine_tuning`) and the
``from-scratch`` baseline CNN (:mod:`.from_scratch`) and ``multi-task`` (:mod:`.multi_task`). Importing this package registers them without
importing torch (the training code loads on first use).
"""

from . import domain_adaptation, feature_extraction, fine_tuning, from_scratch, multi_task  # noqa: F401  (registers the built-in strategies)
from .base import (
    ROLES,
    STRATEGIES,
    Advice,
    Context,
    Option,
    Strategy,
    advice_rules,
    default_strategy,
    get_strategy,
    register_strategy,
    strategy_names,
)

__all__ = [
    "ROLES",
    "STRATEGIES",
    "Advice",
    "Context",
    "Option",
    "Strategy",
    "advice_rules",
    "default_strategy",
    "get_strategy",
    "register_strategy",
    "strategy_names",
]
