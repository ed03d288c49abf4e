"""Domain adaptation (issue 15): the task stays, the data distribution shifts; labelled source items and
unlabelled target items train one classifier for the target.

- :mod:`.losses`: gradient reversal, DANN, CDAN+E, Deep CORAL and multi-kernel MMD losses (``nn.Module``).
- :mod:`.shallow`: CORAL, subspace alignment, linear TCA and importance reweighting on frozen embeddings.
- :mod:`.deep`: deep methods on the shared training loop.
- :mod:`.selection`: choosing the method without target labels (DEV, domain discrepancy, entropy).
- :mod:`.strategy`: the ``domain-adaptation`` strategy (role ``adaptation``) behind
  :class:`~transferkit.estimators.DomainAdapter` and ``transferkit adapt``.

Importing this package does not import torch.
"""

from .strategy import DEEP, METHODS, DomainAdaptation, baseline_of

__all__ = ["DEEP", "METHODS", "DomainAdaptation", "baseline_of"]
