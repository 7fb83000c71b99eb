"""Reweighted Proximal Pruning (Guo et al. 2019, arXiv 1909.12486).

After each optimizer step (the optimizer never sees the penalty, so Adam's moments are not
disturbed) the target weights go through the proximal operator of the reweighted l1 penalty
``gamma * sum_i alpha_i |w_i|``, a soft threshold that produces exact zeros::

    w_i <- sign(w_i) * max(|w_i| - lr_t * gamma_m * alpha_i [/ (sqrt(v_hat_i) + eps)], 0)

* ``lr_t`` is the learning rate the optimizer just used (it follows warm-up and decay).
* ``alpha_i = 1 / (|w_i| + epsilon)`` is recomputed every ``reweight_interval`` steps; the first
  round may use ``alpha = 1`` (plain l1; with Adam this is abrupt: a zero weight only stays zero
  when ``gamma * alpha`` exceeds Adam's normalised step, so nothing happens until gamma ~ 1 and
  then most weights go at once; off by default).
* ``threshold="adam"`` divides by Adam's bias-corrected ``sqrt(v_hat) + eps`` (the preconditioned
  variant of published prox-AdamW code); ``"plain"`` does not.
* Reaching the target (design choice, see README): l1 alone gives whatever sparsity gamma yields,
  and one gamma gives very uneven sparsity across matrices. So ``gamma_m`` is set each step by a
  proportional controller, ``gamma * exp(gain * (scheduled - measured sparsity))`` per matrix or
  globally (``gamma_control``), toward a cubic sparsity ramp. At the schedule's end the weights are projected onto exactly
  ``target_sparsity`` (top-|w|) and the pattern is frozen; the report says how much sparsity came
  from the proximal path and how many zero weights the projection re-admitted.

Example:
    >>> from hf_prune import RPPConfig
    >>> cfg = RPPConfig(target_sparsity=0.8, threshold="adam")
    >>> cfg.method, cfg.gamma_control
    ('rpp', 'per_matrix')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..config import InvalidConfigError, ScheduledSparsityConfig, check_range
from ..errors import MethodOrderError
from ..registry import register_method
from ..schedules import cubic_sparsity
from ..state_dicts import StateGroups
from .base import ElementwiseMaskMethod, pruned_masks_for_target

# The controller may move a matrix's gamma this many times away from the configured value,
# either way: enough to even out the weight scales of real encoders (query/key weights are about
# twice as large as the others), bounded so the threshold never swamps the surviving weights.
_GAMMA_RANGE = 100.0


@dataclass
class RPPConfig(ScheduledSparsityConfig):
    """Reweighted proximal pruning.

    Example:
        >>> RPPConfig(gamma=0.5, reweight_interval=25).reweight_interval
        25
    """

    method = "rpp"

    gamma: float = field(default=0.25, metadata={"help": "l1 strength (> 0) before control."})
    epsilon: float = field(default=1e-3, metadata={"help": "Reweighting epsilon in alpha = 1/(|w| + epsilon), > 0."})
    reweight_interval: int = field(
        default=50, metadata={"help": "Optimizer steps per reweighting round (alpha recomputed), >= 1."}
    )
    plain_l1_first_round: bool = field(
        default=False,
        metadata={"help": "Use alpha = 1 (plain l1) in the first round (abrupt with Adam: see README)."},
    )
    threshold: Literal["plain", "adam"] = field(
        default="plain",
        metadata={"help": "'plain': lr*gamma*alpha; 'adam': also divided by sqrt(v_hat)+eps."},
    )
    gamma_control: Literal["per_matrix", "global", "off"] = field(
        default="per_matrix",
        metadata={"help": "Adapt gamma to track the sparsity ramp per matrix, globally, or not."},
    )
    controller_gain: float = field(
        default=10.0,
        metadata={"help": "gamma_m = gamma * exp(gain * (scheduled - measured sparsity of m)), >= 0."},
    )

    def validate(self) -> None:
        super().validate()
        check_range("gamma", self.gamma, 0.0, math.inf, low_inclusive=False, high_inclusive=False)
        check_range("epsilon", self.epsilon, 0.0, math.inf, low_inclusive=False, high_inclusive=False)
        check_range("controller_gain", self.controller_gain, 0.0, math.inf, high_inclusive=False)
        if self.reweight_interval < 1:
            raise InvalidConfigError(f"reweight_interval={self.reweight_interval} must be >= 1.")


def _param_groups_by_param(optimizer: torch.optim.Optimizer) -> dict[int, dict[str, Any]]:
    return {id(p): group for group in optimizer.param_groups for p in group["params"]}


def _adam_denominator(optimizer: torch.optim.Optimizer, param: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
    """Adam's bias-corrected ``sqrt(v_hat) + eps`` for ``param``."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the torch optimizer
    state = inner.state.get(param, {})
    if "exp_avg_sq" not in state:
        raise InvalidConfigError(
            f"RPPConfig.threshold='adam' needs an Adam-family optimizer with 'exp_avg_sq' state; "
            f"{type(inner).__name__} has none. Use threshold='plain' or an AdamW optimizer."
        )
    step = float(state["step"])
    beta2 = group["betas"][1]
    v_hat = state["exp_avg_sq"] / (1.0 - beta2**step)
    return v_hat.sqrt_().add_(group["eps"])


class ReweightedProximalPruning(ElementwiseMaskMethod):
    """RPP; see the module docstring. Phases: ``dense`` -> ``proximal`` -> ``frozen``."""

    config_class = RPPConfig
    config: RPPConfig

    def __init__(self, config: RPPConfig) -> None:
        super().__init__(config)
        self.begin_step = 0
        self.end_step = 0
        self.gamma: torch.Tensor | None = None  # one value per target matrix
        self.alpha: dict[str, torch.Tensor] = {}  # empty in a plain-l1 round
        self.reweight_round = -1
        self.scheduled_sparsity = 0.0
        self.proximal_sparsity: float | None = None
        self.readmitted = 0
        self.last_threshold = 0.0

    def begin(self, total_steps: int) -> None:
        super().begin(total_steps)
        self.begin_step, self.end_step = self.config.resolve_steps(total_steps)
        if self.gamma is None:
            self.gamma = torch.full((len(self.targets),), float(self.config.gamma), dtype=torch.float64)

    @property
    def phase(self) -> str:
        return "frozen" if self.frozen else ("proximal" if self.reweight_round >= 0 else "dense")

    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.require_attached("step")
        if self.frozen:
            self.apply_masks()
            return
        self.require_begun("step")
        if self.begin_step < step <= self.end_step:
            if optimizer is None:
                raise ValueError("RPP.step needs the optimizer: the threshold follows its learning rate.")
            self._proximal_step(step, optimizer)
        if step >= self.end_step:
            self.finalize()

    @torch.no_grad()
    def _proximal_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        self._maybe_reweight(step)
        # Rebuilt every step (a few dozen entries): an optimizer can be replaced between runs.
        groups = _param_groups_by_param(optimizer)
        if self.gamma is None:
            raise MethodOrderError(
                "ReweightedProximalPruning.step() before begin(total_steps): call method.begin() first."
            )
        zeros = []
        thresholds = []
        for index, name in enumerate(self.targets):
            weight = self.weight(name)
            group = groups.get(id(weight))
            if group is None:
                raise ValueError(
                    f"{name}.weight is not in the optimizer, so RPP cannot read its learning rate; "
                    f"pass all pruned weights to the optimizer or exclude {name!r} from pruning."
                )
            scale = group["lr"] * float(self.gamma[index])
            threshold = self.alpha[name] * scale if self.alpha else torch.full_like(weight, scale)
            if self.config.threshold == "adam":
                threshold.div_(_adam_denominator(optimizer, weight, group))
            shrunk = weight.abs().sub_(threshold).clamp_(min=0.0)
            weight.copy_(shrunk.mul_(weight.sign()))
            zeros.append(int((weight == 0).sum()))
            thresholds.append(scale)
        self.last_threshold = sum(thresholds) / len(thresholds)
        self.scheduled_sparsity = cubic_sparsity(step, 0.0, self.config.target_sparsity, self.begin_step, self.end_step)
        self._control_gamma(zeros)

    def _maybe_reweight(self, step: int) -> None:
        round_index = (step - self.begin_step - 1) // self.config.reweight_interval
        if round_index == self.reweight_round:
            return
        self.reweight_round = round_index
        if round_index == 0 and self.config.plain_l1_first_round:
            self.alpha = {}
        else:
            self.alpha = {name: 1.0 / (self.weight(name).abs() + self.config.epsilon) for name in self.targets}

    def _control_gamma(self, zeros: list[int]) -> None:
        """Proportional control around the configured gamma: no integral wind-up.

        An integral controller (gamma *= exp(k * error) every step) was tried first: sparsity
        lags gamma by tens of steps, so gamma wound up 100x and the soft threshold then shrank
        the surviving weights too (training loss back to chance on MiniLM at 78% sparsity).
        """
        if self.config.gamma_control == "off" or self.gamma is None:
            return
        sizes = torch.tensor([self.weight(n).numel() for n in self.targets], dtype=torch.float64)
        measured = torch.tensor(zeros, dtype=torch.float64)
        if self.config.gamma_control == "global":
            measured = torch.full_like(sizes, float(measured.sum() / sizes.sum()))
        else:
            measured = measured / sizes
        factor = torch.exp(self.config.controller_gain * (self.scheduled_sparsity - measured))
        self.gamma = self.config.gamma * factor.clamp_(1.0 / _GAMMA_RANGE, _GAMMA_RANGE)

    @torch.no_grad()
    def finalize(self) -> dict[str, Any]:
        self.require_attached("finalize")
        if not self.frozen:
            self.proximal_sparsity = self.sparsity()
            scores = {name: self.weight(name).abs() for name in self.targets}
            self.pruned = pruned_masks_for_target(
                scores, self.config.target_sparsity, self.config.sparsity_distribution
            )
            # Kept positions that are already exactly zero: over-pruned matrices get them back.
            self.readmitted = sum(int(((~p) & (scores[n] == 0)).sum()) for n, p in self.pruned.items())
            self.apply_masks()
            self.frozen = True
            self.alpha = {}
            self.scheduled_sparsity = self.config.target_sparsity
        report = self.report()
        report.update(
            proximal_sparsity=self.proximal_sparsity,
            projection_added=None
            if self.proximal_sparsity is None
            else self.config.target_sparsity - self.proximal_sparsity,
            readmitted_zeros=self.readmitted,
        )
        return report

    def stats(self) -> dict[str, float]:
        stats = {**super().stats(), "scheduled_sparsity": self.scheduled_sparsity, "threshold": self.last_threshold}
        if self.gamma is not None:
            stats["gamma"] = float(self.gamma.mean())
        if self.proximal_sparsity is not None:
            stats["proximal_sparsity"] = self.proximal_sparsity
        return stats

    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        tensors, metadata = super().state_dict()
        if self.gamma is not None:
            tensors["gamma"] = self.gamma.clone()
        tensors["alpha"] = dict(self.alpha)
        metadata.update(
            reweight_round=self.reweight_round,
            scheduled_sparsity=self.scheduled_sparsity,
            proximal_sparsity=self.proximal_sparsity,
            readmitted=self.readmitted,
            last_threshold=self.last_threshold,
        )
        return tensors, metadata

    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        super().load_state_dict(tensors, metadata)
        if "gamma" in tensors:
            self.gamma = tensors["gamma"].to(torch.float64).clone()
        self.alpha = {name: value.to(self.weight(name).device) for name, value in (tensors.get("alpha") or {}).items()}
        self.reweight_round = int(metadata["reweight_round"])
        self.scheduled_sparsity = float(metadata["scheduled_sparsity"])
        self.proximal_sparsity = metadata["proximal_sparsity"]
        self.readmitted = int(metadata["readmitted"])
        self.last_threshold = float(metadata["last_threshold"])


register_method(RPPConfig, ReweightedProximalPruning)
