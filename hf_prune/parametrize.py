"""Parametrizations that pruning methods attach to weights (``torch.nn.utils.parametrize``).

Model code is untouched: a parametrized ``module.weight`` is computed from the stored tensors on
every access. Trainable pruning state (movement scores, gate logits) is a plain tensor attribute
of the parametrization, never an ``nn.Parameter``, so the model's parameters, state dict and the
Trainer's optimizer are the same with and without pruning (see ``methods/base.py``).

* :class:`MovementMask`: ``W -> W * M(S)`` with a straight-through mask (movement pruning).
* :class:`HardConcreteFactorization`: ``W = P diag(z) Q`` with hard-concrete gates (rank pruning).

Example:
    >>> mask = MovementMask(torch.zeros(2, 2, requires_grad=True))
    >>> mask(torch.full((2, 2), 3.0)).tolist()
    [[3.0, 3.0], [3.0, 3.0]]
"""

from __future__ import annotations

import math
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn

# Uniform noise is kept inside (eps, 1 - eps): log(0) would give an infinite logit.
_NOISE_EPS = 1e-6


class _StraightThroughMask(torch.autograd.Function):
    """Forward: the 0/1 mask (all ones when ``keep`` is None). Backward: identity to the scores."""

    @staticmethod
    def forward(ctx: Any, scores: torch.Tensor, keep: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
        ctx.score_dtype = scores.dtype
        if keep is None:
            return torch.ones(scores.shape, dtype=dtype, device=scores.device)
        return keep.to(dtype)  # a no-op when the caller passes the mask already cast

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # The mask's dL/dM is dL/dW' * W (mul's backward), passed to S as if M were S.
        return grad.to(ctx.score_dtype), None, None


class MovementMask(nn.Module):
    """Parametrization ``W -> W * M(S)``; the scores are a plain attribute, not a parameter.

    ``keep`` (bool, True = kept; None = all kept) is set by the method once per optimizer step;
    its cast to the weight's dtype is cached so micro-batches do not repeat it. Once ``frozen``,
    the forward is the identity: the method zeroes the stored weight after every optimizer step,
    so multiplying by the final mask again would only cost a pass forward and one backward.

    Example:
        >>> mask = MovementMask(torch.zeros(2, 2, requires_grad=True))
        >>> mask(torch.ones(2, 2)).tolist()
        [[1.0, 1.0], [1.0, 1.0]]
        >>> mask.keep = torch.tensor([[True, False], [True, True]])
        >>> mask(torch.ones(2, 2)).tolist()
        [[1.0, 0.0], [1.0, 1.0]]
    """

    # Declared for type checkers: set with object.__setattr__ (below), so nn.Module never sees them.
    scores: torch.Tensor
    _keep: torch.Tensor | None
    _keep_cast: torch.Tensor | None

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        # object.__setattr__ so neither parameters() nor state_dict() ever sees them: the
        # Trainer's optimizer and checkpoint format must be the same with and without pruning.
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "_keep", None)
        object.__setattr__(self, "_keep_cast", None)
        self.frozen = False

    @property
    def keep(self) -> torch.Tensor | None:
        """Bool mask, True where the weight is kept; None keeps everything."""
        return self._keep

    @keep.setter
    def keep(self, value: torch.Tensor | None) -> None:
        object.__setattr__(self, "_keep", value)
        object.__setattr__(self, "_keep_cast", None)

    def _cast_keep(self, dtype: torch.dtype) -> torch.Tensor | None:
        if self._keep is None:
            return None
        if self._keep_cast is None or self._keep_cast.dtype != dtype or self._keep_cast.device != self._keep.device:
            object.__setattr__(self, "_keep_cast", self._keep.to(dtype))
        return self._keep_cast

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if self.frozen:
            return weight
        return weight * _StraightThroughMask.apply(self.scores, self._cast_keep(weight.dtype), weight.dtype)


class HardConcreteFactorization(nn.Module):
    """Parametrization ``weight = P diag(z) Q`` with hard-concrete gates ``z``.

    ``log_alpha`` is a plain tensor attribute (not an ``nn.Parameter``), so it stays out of the
    model's parameters and state dict. Train/eval mode follows ``model.train()``/``model.eval()``
    (the parametrization is a submodule of the Linear layer). Once ``frozen_gate`` is set, that
    gate is used in both modes.

    Example:
        >>> from torch.nn.utils import parametrize
        >>> linear = nn.Linear(6, 4)
        >>> dense = linear.weight.detach().clone()
        >>> gates = HardConcreteFactorization(4, device=dense.device)
        >>> _ = parametrize.register_parametrization(linear.eval(), "weight", gates)
        >>> torch.allclose(linear.weight, dense, atol=1e-5), tuple(linear.parametrizations.weight.original0.shape)
        (True, (4, 4))
    """

    def __init__(
        self,
        rank: int,
        *,
        beta: float = 2.0 / 3.0,
        left: float = -0.1,
        right: float = 1.1,
        log_alpha_init: float = 3.0,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.beta, self.left, self.right = beta, left, right
        self.log_alpha = torch.full((rank,), float(log_alpha_init), device=device, requires_grad=True)
        self.frozen_gate: torch.Tensor | None = None

    def prob_nonzero(self) -> torch.Tensor:
        """``P(z_j != 0) = sigmoid(log_alpha - beta * log(-l / r))``, differentiable."""
        return torch.sigmoid(self.log_alpha - self.beta * math.log(-self.left / self.right))

    def deterministic_gate(self) -> torch.Tensor:
        """The eval-mode gate ``clamp(sigmoid(log_alpha) * (r - l) + l, 0, 1)``."""
        return torch.sigmoid(self.log_alpha).mul(self.right - self.left).add(self.left).clamp(0.0, 1.0)

    @torch.no_grad()
    def mean_gate(self, points: int = 1024) -> torch.Tensor:
        """``E[z]`` under the training distribution (midpoint rule over ``u``), not differentiable."""
        u = (torch.arange(points, device=self.log_alpha.device, dtype=torch.float64) + 0.5) / points
        logits = (torch.log(u) - torch.log1p(-u))[:, None] + self.log_alpha.detach().double()[None, :]
        s = torch.sigmoid(logits / self.beta)
        return s.mul(self.right - self.left).add(self.left).clamp(0.0, 1.0).mean(0).to(self.log_alpha.dtype)

    def gate(self) -> torch.Tensor:
        """The gate this forward uses: frozen, deterministic (eval) or sampled (training)."""
        if self.frozen_gate is not None:
            return self.frozen_gate
        if not self.training:
            return self.deterministic_gate()
        u = torch.rand_like(self.log_alpha).clamp_(_NOISE_EPS, 1.0 - _NOISE_EPS)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.log_alpha) / self.beta)
        return s.mul(self.right - self.left).add(self.left).clamp(0.0, 1.0)

    def forward(self, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
        # The gate lives where the method put it; follow the factors if the model moved since.
        z = self.gate().to(device=up.device, dtype=up.dtype)
        return (up * z) @ down

    @torch.no_grad()
    def right_inverse(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``P = U sqrt(S)``, ``Q = sqrt(S) V^T`` (SVD in float32, returned in ``weight``'s dtype)."""
        u, s, vh = torch.linalg.svd(weight.float(), full_matrices=False)
        root = s.sqrt()
        return (u * root).to(weight.dtype), (root[:, None] * vh).to(weight.dtype)


def stored_tensor(module: nn.Module, name: str = "original") -> torch.Tensor:
    """The tensor stored behind ``module``'s parametrized weight: ``original`` (one tensor) or
    ``original0``, ``original1``... (a parametrization whose ``right_inverse`` returns several).

    Example:
        >>> from torch.nn.utils import parametrize
        >>> linear = nn.Linear(2, 2)
        >>> _ = parametrize.register_parametrization(linear, "weight", MovementMask(torch.zeros(2, 2)))
        >>> stored_tensor(linear) is linear.parametrizations.weight.original
        True
    """
    parametrizations = cast(nn.ModuleDict, module.parametrizations)
    return cast(torch.Tensor, getattr(parametrizations["weight"], name))


def all_reduce_grads_mean(tensors: list[torch.Tensor]) -> None:
    """Average the gradients of method-owned ``tensors`` over processes (DDP only reduces model
    parameters); a no-op in a single process. A missing gradient counts as zeros, so every
    process joins the collective with the same shapes.

    Example:
        >>> t = torch.ones(2, requires_grad=True)
        >>> all_reduce_grads_mean([t]); t.grad is None
        True
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    grads = []
    for tensor in tensors:
        if tensor.grad is None:
            tensor.grad = torch.zeros_like(tensor)
        grads.append(tensor.grad)
    flat = torch.cat([grad.flatten() for grad in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
        offset += grad.numel()
