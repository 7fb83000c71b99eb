"""The compiled form of a rank-pruned matrix: two small Linear layers, and module surgery.

A rank-pruned ``nn.Linear(in, out)`` becomes ``FactorizedLinear``: ``down`` (in -> r, no bias)
then ``up`` (r -> out, with the original bias). It is smaller than the dense layer when
``r * (in + out) < in * out`` and then also faster. State-dict keys are ``<name>.down.weight``,
``<name>.up.weight`` and ``<name>.up.bias``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> dense = nn.Linear(8, 6)
    >>> small = FactorizedLinear.from_linear_svd(dense, rank=6)   # full rank: same function
    >>> x = torch.randn(3, 8)
    >>> torch.allclose(small(x), dense(x), atol=1e-5)
    True
    >>> small.rank, small.in_features, small.out_features
    (6, 8, 6)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class FactorizedLinear(nn.Module):
    """``x -> up(down(x))`` with ``down: in -> rank`` (no bias) and ``up: rank -> out``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.down = nn.Linear(in_features, rank, bias=False, device=device, dtype=dtype)
        self.up = nn.Linear(rank, out_features, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))

    @classmethod
    def from_factors(
        cls, up_weight: torch.Tensor, down_weight: torch.Tensor, bias: torch.Tensor | None
    ) -> FactorizedLinear:
        """Build from ``W ~= up_weight @ down_weight`` (out x r and r x in)."""
        out_features, rank = up_weight.shape
        module = cls(
            down_weight.shape[1],
            out_features,
            rank,
            bias=bias is not None,
            device=up_weight.device,
            dtype=up_weight.dtype,
        )
        with torch.no_grad():
            module.up.weight.copy_(up_weight)
            module.down.weight.copy_(down_weight)
            if bias is not None:
                module.up.bias.copy_(bias)
        return module

    @classmethod
    def from_linear_svd(cls, linear: nn.Linear, rank: int) -> FactorizedLinear:
        """Best rank-``rank`` approximation of ``linear`` (truncated SVD)."""
        u, s, vh = torch.linalg.svd(linear.weight.detach().float(), full_matrices=False)
        root = s[:rank].sqrt()
        up = (u[:, :rank] * root).to(linear.weight.dtype)
        down = (root[:, None] * vh[:rank]).to(linear.weight.dtype)
        return cls.from_factors(up, down, None if linear.bias is None else linear.bias.detach())

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def factorized_is_smaller(in_features: int, out_features: int, rank: int) -> bool:
    """Whether two factors of ``rank`` hold fewer weights than the dense matrix.

    Example:
        >>> factorized_is_smaller(384, 1536, 100), factorized_is_smaller(384, 384, 200)
        (True, False)
    """
    return rank * (in_features + out_features) < in_features * out_features


def compiled_size(rank: int, in_features: int, out_features: int) -> int:
    """Weights a matrix of ``rank`` costs once compiled (factors, or dense when not smaller).

    Example:
        >>> compiled_size(10, 384, 1536), compiled_size(300, 384, 384)
        (19200, 147456)
    """
    if factorized_is_smaller(in_features, out_features, rank):
        return rank * (in_features + out_features)
    return in_features * out_features


def replace_module(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    """Put ``new`` at dotted path ``name`` inside ``model``; returns the module it replaced."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    old = getattr(parent, child)
    setattr(parent, child, new)
    return old


def factored_modules(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module name: {in_features, out_features, rank, bias}}`` of every FactorizedLinear."""
    return {
        name: {
            "in_features": module.in_features,
            "out_features": module.out_features,
            "rank": module.rank,
            "bias": module.up.bias is not None,
        }
        for name, module in model.named_modules()
        if isinstance(module, FactorizedLinear)
    }


@torch.no_grad()
def densified_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with each FactorizedLinear's factors replaced by ``up @ down``."""
    state = model.state_dict()
    for name, module in model.named_modules():
        if not isinstance(module, FactorizedLinear):
            continue
        for key in [f"{name}.down.weight", f"{name}.up.weight", f"{name}.up.bias"]:
            state.pop(key, None)
        state[f"{name}.weight"] = module.up.weight @ module.down.weight
        if module.up.bias is not None:
            state[f"{name}.bias"] = module.up.bias.detach()
    return state
