"""Domain-adaptation losses as ``nn.Module``s (after TLlib's ``tllib.alignment`` and ``tllib.modules``).

- :class:`GradientReversal`: identity forward, gradient × ``-coeff`` backward (Ganin & Lempitsky 2015).
- :func:`dann_coefficient`: the usual schedule ``2 / (1 + exp(-10 p)) - 1`` of the reversal's weight over
  training progress ``p`` in ``[0, 1]`` (TLlib's ``WarmStartGradientReverseLayer``).
- :class:`DomainAdversarialLoss` (DANN): a discriminator on reversed features, binary cross-entropy with
  source = 1, target = 0; it also reports the discriminator's accuracy.
- :class:`ConditionalDomainAdversarialLoss` (CDAN+E, Long et al. 2018): the discriminator sees the
  multilinear map ``f ⊗ softmax(g)`` (randomised to 1024 dimensions when ``f``'s size × classes exceeds
  4096), each sample weighted by ``1 + exp(-entropy)``.
- :class:`CoralLoss` (Deep CORAL, Sun & Saenko 2016): ``‖C_s − C_t‖²_F / (4 d²)``.
- :class:`MultiKernelMMD` (DAN, Long et al. 2015): squared MMD with a sum of Gaussian kernels whose
  bandwidths are ``2^k`` × the batch's mean squared distance, ``k = -2..2``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.coeff, None


class GradientReversal(nn.Module):
    """Identity in the forward pass; multiplies the gradient by ``-coeff`` in the backward pass."""

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Reverse.apply(x, self.coeff)


def dann_coefficient(progress: float, gamma: float = 10.0) -> float:
    """The reversal weight at training progress ``progress`` in ``[0, 1]``: rises from 0 to ~1."""
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class DomainDiscriminator(nn.Sequential):
    """Two hidden layers (Linear-BN-ReLU) and one logit: "this feature comes from the source"."""

    def __init__(self, in_features: int, hidden: int = 256) -> None:
        super().__init__(nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1))


def _domain_bce(logits: torch.Tensor, n_source: int, weight: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
    labels = torch.zeros_like(logits)
    labels[:n_source] = 1.0
    loss = F.binary_cross_entropy_with_logits(logits, labels, weight=weight, reduction="sum" if weight is not None else "mean")
    if weight is not None:
        loss = loss / weight.sum().clamp_min(1e-12)
    acc = float(((logits.detach() > 0).float() == labels).float().mean())
    return loss, acc


class DomainAdversarialLoss(nn.Module):
    """DANN's loss: the discriminator classifies reversed source and target features by domain.

    ``forward(f_s, f_t)`` returns the loss; :attr:`domain_accuracy` holds the last batch's accuracy.
    Set :attr:`grl`'s ``coeff`` during training (see :func:`dann_coefficient`)."""

    def __init__(self, in_features: int, hidden: int = 256) -> None:
        super().__init__()
        self.grl = GradientReversal(0.0)
        self.discriminator = DomainDiscriminator(in_features, hidden)
        self.domain_accuracy = 0.5

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, *_: Any) -> torch.Tensor:
        logits = self.discriminator(self.grl(torch.cat([f_s, f_t]))).squeeze(1)
        loss, self.domain_accuracy = _domain_bce(logits, len(f_s))
        return loss


class ConditionalDomainAdversarialLoss(nn.Module):
    """CDAN+E: the discriminator sees ``f ⊗ softmax(g)``; samples weighted by ``1 + exp(-H(softmax(g)))``."""

    def __init__(self, in_features: int, n_classes: int, hidden: int = 256, random_dim: int = 1024,
                 seed: int = 0) -> None:
        super().__init__()
        self.grl = GradientReversal(0.0)
        self.randomized = in_features * n_classes > 4096
        dim = random_dim if self.randomized else in_features * n_classes
        if self.randomized:
            g = torch.Generator().manual_seed(seed)
            self.register_buffer("rf", torch.randn(in_features, random_dim, generator=g))
            self.register_buffer("rg", torch.randn(n_classes, random_dim, generator=g))
        self.discriminator = DomainDiscriminator(dim, hidden)
        self.domain_accuracy = 0.5

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, g_s: torch.Tensor, g_t: torch.Tensor) -> torch.Tensor:
        f = torch.cat([f_s, f_t])
        p = F.softmax(torch.cat([g_s, g_t]), dim=1).detach()
        if self.randomized:
            h = (f @ self.rf) * (p @ self.rg) / math.sqrt(self.rf.shape[1])
        else:
            h = torch.bmm(p.unsqueeze(2), f.unsqueeze(1)).flatten(1)
        entropy = -(p * torch.log(p + 1e-5)).sum(1)
        weight = 1.0 + torch.exp(-entropy)
        n_s = len(f_s)
        weight = torch.cat([weight[:n_s] / weight[:n_s].sum(), weight[n_s:] / weight[n_s:].sum()]) * len(f)
        logits = self.discriminator(self.grl(h)).squeeze(1)
        loss, self.domain_accuracy = _domain_bce(logits, n_s, weight.detach())
        return loss


def _covariance(x: torch.Tensor) -> torch.Tensor:
    x = x - x.mean(0, keepdim=True)
    return x.T @ x / max(1, len(x) - 1)


class CoralLoss(nn.Module):
    """Deep CORAL: squared Frobenius distance of the batch covariances, divided by ``4 d²``."""

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, *_: Any) -> torch.Tensor:
        d = f_s.shape[1]
        return (_covariance(f_s) - _covariance(f_t)).pow(2).sum() / (4.0 * d * d)


class MultiKernelMMD(nn.Module):
    """Squared maximum mean discrepancy (biased estimate) with Gaussian kernels of several bandwidths."""

    def __init__(self, powers: tuple[int, ...] = (-2, -1, 0, 1, 2)) -> None:
        super().__init__()
        self.powers = powers

    def forward(self, f_s: torch.Tensor, f_t: torch.Tensor, *_: Any) -> torch.Tensor:
        x = torch.cat([f_s, f_t])
        d2 = torch.cdist(x, x).pow(2)
        base = d2.detach().mean().clamp_min(1e-8)
        k = sum(torch.exp(-d2 / (base * 2.0**p)) for p in self.powers) / len(self.powers)
        n = len(f_s)
        return k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()
