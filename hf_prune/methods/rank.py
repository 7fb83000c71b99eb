"""Rank pruning: factorised low-rank pruning with hard-concrete gates (FLOP; Wang, Wohlwend, Lei 2020).

Every target ``nn.Linear`` weight ``W`` (out x in) is re-parametrised as ``P diag(z) Q`` with
``P = U sqrt(S)`` (out x r) and ``Q = sqrt(S) V^T`` (r x in) from the SVD of the pretrained ``W``,
``r = min(in, out)``. ``P`` and ``Q`` are model parameters (the Trainer's optimizer trains them);
the gates ``z`` are hard-concrete (Louizos et al. 2018), one per rank component:

* training mode samples ``u ~ U(0, 1)``, ``s = sigmoid((log u - log(1 - u) + log_alpha) / beta)``,
  ``z = clamp(s * (right - left) + left, 0, 1)``;
* eval mode is deterministic, ``z = clamp(sigmoid(log_alpha) * (right - left) + left, 0, 1)``.
  ``log_alpha_init`` is validated to make these exactly 1, so the attached model computes the
  pretrained function (up to SVD round-off).

The gate logits ``log_alpha`` and the two Lagrange multipliers are *method-owned* tensors (not in
``model.parameters()`` nor the model's state dict; see ``methods/base.py``), updated in
:meth:`RankPruning.step`: the task loss's gradient reaches ``log_alpha`` through the sampled
gates during the Trainer's backward passes; ``step()`` adds the gradient of the augmented
Lagrangian ``l1 * gap + l2 * gap^2`` (``gap = s - t``, expected minus target sparsity) and steps
the gates by descent with the method's own Adam, and the multipliers by ascent (below). Gates
and multipliers are held until the schedule's ``begin`` (10% of the run by default: the freshly
initialised task head has to learn first, or the gates follow noise). ``t`` then ramps linearly
to ``1 - target_params_fraction`` at ``warmup_end`` (30%) and holds; at ``end`` (70%) the gates
are frozen (:meth:`RankPruning.finalize`).

**Controller** (``controller="anti_windup"``, the default; :class:`~.rank_budget.AntiWindupMultipliers`).
``l1`` acts as the integral term of a controller and ``2 * l2 * gap`` as the proportional one.
Both move by plain ascent proportional to the gap (``l1 += eta * gap``, ``l2 += eta * gap^2``,
``eta = 0.5``), and ``l1`` is reset to 0 as soon as it would push the sparsity past the target,
judged on the gap predicted 10 steps ahead (the gates' Adam momentum carries them about that far
once the push stops). Wide-open gates barely feel the Lagrangian (its gradient goes through
``P(z != 0)``, saturated near 1), so ``l1`` has to grow large before the first gates move, and
then they all move at once: the earlier controller (``controller="adam"``, multipliers stepped by
Adam) kept that wound-up ``l1`` and unwound it at Adam's fixed pace, so at 0.5 the gates
overshot to 0.64, while its steps, normalised by the large early gaps, crawled near the target
and left 0.8 and 0.9 short (0.73 and 0.77 at the freeze). With the reset the gates settle on the
target (``benchmarks/results/rank_tuning.md``), and finalize's projection and fill have little
left to change.

**Budget units.** ``budget_of="prunable"`` counts the target Linear weights (biases excluded):
a matrix of final rank ``r'`` costs ``min(r' * (in + out), in * out)``, because a factorisation
holding more weights than the dense matrix is compiled back to a dense ``nn.Linear``.
``budget_of="encoder"`` counts every parameter of the encoder backbone except the embeddings
and the pooler (the multitask-pruning paper's "encoder parameters"): biases, LayerNorms and
untargeted Linear layers count as a fixed part that cannot shrink. The expected sparsity
``s_hat = 1 - E[kept] / denominator`` (logged, what compiling would give) uses the same units,
with the expected kept size of a matrix ``(in + out) * sum_j P(z_j != 0)`` capped at ``in * out``.
During the ramp the Lagrangian's ``s`` is the same without the cap
(:meth:`RankPruning.expected_factored_sparsity`): the capped size does not move until a matrix
has closed half its components, and a controller that sees no progress for that long winds up.
``t`` therefore starts at the uncapped value of the full-rank factors (about -0.5 for MiniLM:
they hold 1.5x the dense weights). Once the ramp is over, the anti-windup controller holds the
capped (compiled) size to the budget: the gap is the larger of the two
(:meth:`RankPruning.controlled_gap`), since a matrix left above its break-even rank costs less
compiled than factored, and holding the factored size would leave the compiled model short of
the budget.

**Finalize.** Gates are frozen at their deterministic value; components with ``z = 0`` are
dropped and every matrix keeps at least one. If the compiled size is still above the budget,
the least probable components (``P(z != 0)``) are dropped globally until it fits; components
dropped from a matrix that still compiles to the dense form are re-admitted, since they cost
nothing there. If it is below the budget (``fill_budget``, on by default), the most probable
dropped components come back, at their mean gate value ``E[z]``, while they fit: gates that have
not polarised are often on in training (``P(z != 0)`` of 0.2-0.4) yet have a deterministic gate
of 0, so the deterministic size can sit below the expected size the Lagrangian controlled
(components of matrices that compile dense anyway come back for free). The report says how far
the gates got and what the projection and the fill changed (``fill_added_fraction``: the share
of the budget the fill supplied, near 0 when the gates land on the budget). The model keeps its
parametrized structure (checkpoints keep loading); :meth:`RankPruning.materialize` then compiles
each target into a :class:`~hf_prune.factorization.FactorizedLinear` (``P[:, keep] * z[keep]``
and ``Q[keep]``) or, where that would not be smaller, a dense ``nn.Linear``.

**Penalty.** :meth:`RankPruning.penalty` returns ``None``: the Lagrangian's gradient reaches the
method-owned tensors in :meth:`RankPruning.step`, identically under ``PruningTrainer`` and a
stock ``Trainer`` + callback; its value is logged as ``prune/lagrangian``.

Example:
    >>> import torch
    >>> from transformers import BertConfig, BertForSequenceClassification
    >>> from hf_prune import RankConfig, create_method
    >>> model = BertForSequenceClassification(BertConfig(
    ...     hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64))
    >>> method = create_method(RankConfig(target_params_fraction=0.5, warmup_end_step=2, end_step=4))
    >>> method.attach(model); method.begin(total_steps=5)
    >>> optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    >>> for step in range(1, 6):
    ...     model(input_ids=torch.randint(0, 100, (2, 8)), labels=torch.tensor([0, 1])).loss.backward()
    ...     optimizer.step(); optimizer.zero_grad(); method.step(step, optimizer)
    >>> report = method.finalize(); method.materialize()
    >>> report["achieved_fraction"] <= 0.5
    True
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..config import InvalidConfigError
from ..errors import MethodOrderError
from ..factorization import FactorizedLinear, compiled_size, factorized_is_smaller, replace_module
from ..measure import encoder_parameter_count, unique_numel
from ..parametrize import HardConcreteFactorization, all_reduce_grads_mean, stored_tensor
from ..registry import register_method
from ..schedules import linear_ramp
from ..state_dicts import StateGroups, load_optimizer_tensors, optimizer_tensors
from ..targets import weight_of
from .base import PruningMethod
from .rank_budget import AntiWindupMultipliers, compiled_params, fill_up, project_down
from .rank_config import RankConfig, RankSchedule

logger = logging.getLogger(__name__)


class RankPruning(PruningMethod):
    """FLOP rank pruning; see the module docstring. Phases: ``gating`` -> ``frozen`` -> ``compiled``."""

    config_class = RankConfig
    config: RankConfig
    weight_structure = "factored"  # compiled to FactorizedLinear: exports as factored or dense

    def __init__(self, config: RankConfig) -> None:
        super().__init__(config)
        self.gates: dict[str, HardConcreteFactorization] = {}
        self.shapes: dict[str, tuple[int, int]] = {}  # name -> (in_features, out_features)
        self.lambdas: torch.Tensor | None = None  # (l1, l2), trained by ascent
        # controller="anti_windup" updates the multipliers itself; "adam" leaves them to self.optimizer.
        self.multipliers = (
            AntiWindupMultipliers(step_size=config.multiplier_step_size) if config.controller == "anti_windup" else None
        )
        self.optimizer: torch.optim.Optimizer | None = None
        self.denominator = 0  # budget units: target weights, or encoder parameters
        self.fixed_params = 0  # part of the denominator no gate can remove
        self.model_params_before = 0
        self.schedule: RankSchedule | None = None  # set by begin(), or from explicit steps by step()
        self.initial_factored_sparsity = 0.0  # set by attach: where the Lagrangian's target ramp starts
        self.current_step = 0
        self.scheduled_sparsity = 0.0
        self.last_lagrangian = 0.0
        self.frozen = False
        self.materialized = False
        self.final_report: dict[str, Any] | None = None
        self.keep: dict[str, torch.Tensor] = {}
        self.optimizer_checked = False  # step() checks once that the optimizer holds the factors  # name -> bool per component, set by finalize

    # ----------------------------------------------------------------------------- set-up
    @property
    def budget_params(self) -> int:
        """The most parameters (budget units) the compiled model may keep."""
        return math.floor(self.config.target_params_fraction * self.denominator + 1e-6)

    @property
    def attached_model(self) -> nn.Module:
        """The model given to :meth:`attach`, read through the base class's weak reference.

        The method never keeps the model alive (the Trainer owns it); this raises instead of
        returning ``None`` so a dropped model is reported where it is needed.

        Raises:
            RuntimeError: ``attach`` was never called, or the model has been garbage-collected.
        """
        model = self._model_ref() if self._model_ref is not None else None
        if model is None:
            state = "was never attached" if self._model_ref is None else "has been garbage-collected"
            raise RuntimeError(
                f"RankPruning: the model {state}; keep a reference to the model you attached "
                f"(method.attach(model)) for as long as the method is used."
            )
        return model

    @property
    def final_sparsity(self) -> float:
        """The target's pruned fraction, ``1 - target_params_fraction``."""
        return 1.0 - self.config.target_params_fraction

    @property
    def phase(self) -> str:
        """``"gating"`` (gates train), ``"frozen"`` (after finalize) or ``"compiled"`` (after materialize)."""
        return "compiled" if self.materialized else ("frozen" if self.frozen else "gating")

    def attach(self, model: nn.Module) -> None:
        """Parametrize every target weight as ``P diag(z) Q`` (SVD init); checks the budget first."""
        super().attach(model)
        if any(parametrize.is_parametrized(m, "weight") for m in self.targets.values()):
            raise InvalidConfigError(
                "A target weight is already parametrized (attach called twice, or another tool's "
                "parametrization); attach rank pruning once, to a model without parametrizations."
            )
        self.model_params_before = unique_numel(model.parameters())
        self.shapes = {name: (weight_of(m).shape[1], weight_of(m).shape[0]) for name, m in self.targets.items()}
        prunable = sum(i * o for i, o in self.shapes.values())
        if self.config.budget_of == "encoder":
            self.denominator = encoder_parameter_count(model)
            self.fixed_params = self.denominator - prunable
        else:
            self.denominator, self.fixed_params = prunable, 0
        try:
            self._check_budget_reachable()
        except InvalidConfigError:
            self.targets = {}  # nothing was attached
            raise
        for name, module in self.targets.items():
            gates = HardConcreteFactorization(
                min(self.shapes[name]),
                beta=self.config.beta,
                left=self.config.stretch_left,
                right=self.config.stretch_right,
                log_alpha_init=self.config.log_alpha_init,
                device=weight_of(module).device,
            )
            # unsafe=True skips torch's check forward, which (in training mode, taken from the
            # module) would draw gate noise and shift the RNG stream; shapes and dtypes match.
            parametrize.register_parametrization(module, "weight", gates, unsafe=True)
            self.gates[name] = gates
        device = next(iter(self.gates.values())).log_alpha.device
        self.lambdas = torch.zeros(2, device=device, requires_grad=True)
        with torch.no_grad():
            self.initial_factored_sparsity = float(self.expected_factored_sparsity())
        self.optimizer = torch.optim.Adam(
            [
                {"params": [g.log_alpha for g in self.gates.values()], "lr": self.config.gate_learning_rate},
                # Stepped only by controller="adam" (the anti-windup controller clears their gradient).
                {"params": [self.lambdas], "lr": self.config.multiplier_step_size, "maximize": True},
            ]
        )

    def _check_budget_reachable(self) -> None:
        smallest = self.fixed_params + sum(compiled_size(1, i, o) for i, o in self.shapes.values())
        if smallest > self.budget_params:
            raise InvalidConfigError(
                f"target_params_fraction={self.config.target_params_fraction} is unreachable: even rank 1 "
                f"in every one of the {len(self.shapes)} target matrices keeps {smallest} of "
                f"{self.denominator} parameters (budget_of={self.config.budget_of!r}), a fraction of "
                f"{smallest / self.denominator:.4f}. Use target_params_fraction >= "
                f"{math.ceil(smallest / self.denominator * 1e4) / 1e4}, or prune more modules."
            )

    def begin(self, total_steps: int) -> None:
        super().begin(total_steps)
        self.schedule = self.config.resolve_schedule(total_steps)

    # ----------------------------------------------------------------------------- training
    def expected_kept(self) -> torch.Tensor:
        """Expected parameters kept, in budget units; differentiable in every ``log_alpha``."""
        total = torch.zeros((), device=self._device())
        for name, gates in self.gates.items():
            in_f, out_f = self.shapes[name]
            expected = (in_f + out_f) * gates.prob_nonzero().sum().to(total.device)
            # Capped at the dense size (that is what compiling gives) with the uncapped gradient.
            capped = expected + (expected.clamp(max=float(in_f * out_f)) - expected).detach()
            total = total + capped
        return total + self.fixed_params

    def expected_sparsity(self) -> torch.Tensor:
        """``s_hat = 1 - E[kept] / denominator`` (differentiable): what the compiled model would keep."""
        return 1.0 - self.expected_kept() / self.denominator

    def expected_factored_sparsity(self) -> torch.Tensor:
        """Like :meth:`expected_sparsity`, but every matrix counted factored, without the dense cap.

        This is what the Lagrangian controls while the target ramps (throughout, with
        ``controller="adam"``; see :meth:`controlled_gap`). The capped size does not move until a
        matrix has closed enough components to undercut its dense form (half of them for a square
        matrix), so a Lagrangian on it sees no progress for a long while and its multipliers wind
        up. The factored size moves with every component from the first step; at a budget every
        matrix must factor to meet, the two agree.
        """
        total = torch.zeros((), device=self._device())
        for name, gates in self.gates.items():
            in_f, out_f = self.shapes[name]
            total = total + (in_f + out_f) * gates.prob_nonzero().sum().to(total.device)
        return 1.0 - (total + self.fixed_params) / self.denominator

    def controlled_gap(self, target: float | None = None) -> torch.Tensor:
        """The gap ``s - t`` the Lagrangian drives to 0 (differentiable), at ``target`` (default: scheduled).

        ``s - t`` is :meth:`expected_factored_sparsity` minus the scheduled ``t``, which ramps
        from its value at attach (negative: full-rank factors are larger than the dense matrix) to
        the budget. The anti-windup controller takes the larger of that and the compiled
        (dense-capped) :meth:`expected_sparsity` minus the budget: the capped sparsity is never
        below the factored one, so once the ramp is over the budget is held in the units it is
        measured in; a matrix left above its break-even rank would otherwise count at its
        factored size and the compiled model would end below the budget (0.5: by ~0.02).
        """
        gap = self.expected_factored_sparsity() - (self.scheduled_sparsity if target is None else target)
        if self.multipliers is not None:
            gap = torch.maximum(gap, self.expected_sparsity() - self.final_sparsity)
        return gap

    def lagrangian(self, target: float | None = None) -> torch.Tensor:
        """``l1 * gap + l2 * gap^2`` with the :meth:`controlled_gap` at ``target`` (default: scheduled)."""
        return self._lagrangian_at(self.controlled_gap(target))

    def _lagrangian_at(self, gap: torch.Tensor) -> torch.Tensor:
        if self.lambdas is None:
            raise RuntimeError("RankPruning.lagrangian() needs attach(model) first.")
        return self.lambdas[0] * gap + self.lambdas[1] * gap * gap

    def on_skipped_step(self) -> None:
        # The Trainer skipped its step (fp16 overflow): drop the gates' inf/nan gradients too.
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)

    def step(self, step: int, optimizer: torch.optim.Optimizer | None = None) -> None:
        self.require_attached("step")
        self.current_step = step
        if optimizer is not None and not self.optimizer_checked:
            self._check_optimizer_holds_factors(optimizer)
        if self.frozen or self.optimizer is None:
            return
        schedule = self._resolved_schedule()
        if step >= schedule.end:
            self.optimizer.zero_grad(set_to_none=True)
            self.finalize()
            return
        if step < schedule.begin:
            # Held: the task gradients the forward passes left on log_alpha are dropped.
            self.optimizer.zero_grad(set_to_none=True)
            return
        self.scheduled_sparsity = linear_ramp(
            step, schedule.begin, schedule.warmup_end, self.initial_factored_sparsity, self.final_sparsity
        )
        self._move_state_to_factors()
        gap = self.controlled_gap()
        lagrangian = self._lagrangian_at(gap)
        lagrangian.backward()  # adds to the task-loss gradients the forward passes left on log_alpha
        all_reduce_grads_mean(self._method_tensors())
        if self.multipliers is not None and self.lambdas is not None:
            # The controller moves the multipliers (from the gap, the same on every process), not Adam.
            self.lambdas.grad = None
            self.multipliers.update(self.lambdas, float(gap.detach()))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_lagrangian = float(lagrangian.detach())

    def _check_optimizer_holds_factors(self, optimizer: torch.optim.Optimizer) -> None:
        """Refuse an optimizer built before :meth:`attach`: it does not hold the factors ``P`` and
        ``Q`` that attach created, so they would silently never train (checked once)."""
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [
            name
            for name, module in self.targets.items()
            if isinstance(module, nn.Linear)
            and parametrize.is_parametrized(module, "weight")
            and any(id(stored_tensor(module, f"original{i}")) not in held for i in (0, 1))
        ]
        if missing:
            raise MethodOrderError(
                f"The optimizer given to RankPruning.step() does not hold the factors of {len(missing)} target "
                f"matrices (e.g. {missing[0]!r}): it was built before method.attach(model), which replaces each "
                f"weight by two factors. Build the optimizer after attach (see the README's plain PyTorch loop)."
            )
        self.optimizer_checked = True

    def _resolved_schedule(self) -> RankSchedule:
        """The schedule from :meth:`begin`, or from the config's explicit steps when begin() was skipped."""
        if self.schedule is None:
            if self.config.warmup_end_step is None or self.config.end_step is None:
                raise ValueError(
                    "RankPruning.step() before begin(total_steps): call method.begin(total_steps) first, "
                    "or give RankConfig both warmup_end_step and end_step."
                )
            self.schedule = self.config.resolve_schedule(0)
        return self.schedule

    def _device(self) -> torch.device:
        return self.lambdas.device if self.lambdas is not None else torch.device("cpu")

    @torch.no_grad()
    def _move_state_to_factors(self) -> None:
        """Follow the model if it moved to another device after attach (a no-op otherwise)."""
        for name, gates in self.gates.items():
            device = stored_tensor(self.targets[name], "original0").device
            if gates.log_alpha.device != device:
                gates.log_alpha = self._relocate(gates.log_alpha, device)
        first = next(iter(self.gates.values())).log_alpha.device
        if self.lambdas is not None and self.lambdas.device != first:
            self.lambdas = self._relocate(self.lambdas, first)  # collectives need it beside the gates

    def _relocate(self, old: torch.Tensor, device: torch.device) -> torch.Tensor:
        """A copy of method-owned ``old`` on ``device``, with its gradient and optimizer state."""
        new = old.detach().to(device).requires_grad_(True)
        if old.grad is not None:
            new.grad = old.grad.to(device)
        if self.optimizer is not None:
            state = self.optimizer.state.pop(old, None)
            for group in self.optimizer.param_groups:
                group["params"] = [new if p is old else p for p in group["params"]]
            if state is not None:
                self.optimizer.state[new] = {k: (v if k == "step" else v.to(device)) for k, v in state.items()}
        return new

    def owned_tensors(self) -> list[torch.Tensor]:
        # The multipliers get their gradient in step(), from the unscaled Lagrangian: not listed.
        return [g.log_alpha for g in self.gates.values()]

    def _method_tensors(self) -> list[torch.Tensor]:
        return [g.log_alpha for g in self.gates.values()] + ([self.lambdas] if self.lambdas is not None else [])

    # ----------------------------------------------------------------------------- final state
    @property
    def finished(self) -> bool:
        return self.frozen

    def kept_ranks(self) -> dict[str, int]:
        """Components per matrix that compile: the frozen selection, or deterministic gates > 0 before."""
        if self.keep:
            return {name: int(mask.sum()) for name, mask in self.keep.items()}
        with torch.no_grad():
            return {name: int((g.deterministic_gate() > 0).sum()) for name, g in self.gates.items()}

    def compiled_params(self, ranks: dict[str, int]) -> int:
        """Kept parameters, in budget units, for the given rank per matrix."""
        return compiled_params(ranks, self.shapes, self.fixed_params)

    @torch.no_grad()
    def finalize(self) -> dict[str, Any]:
        """Freeze the gates, keep the non-zero ones and fit the budget; returns the report.

        Components whose deterministic gate is 0 are dropped (each matrix keeps at least its
        most probable one). Over the budget, the least probable are dropped globally; under it
        (``fill_budget``), the most probable dropped ones come back at their mean gate value.
        """
        if not self.attached:
            raise RuntimeError("RankPruning.finalize() needs attach(model) first.")
        if self.frozen and self.final_report is not None:
            return copy.deepcopy(self.final_report)  # callers (the export) add keys to theirs
        values = {name: g.deterministic_gate() for name, g in self.gates.items()}
        probs = {name: g.prob_nonzero().detach() for name, g in self.gates.items()}
        keep = {name: z > 0 for name, z in values.items()}
        revived = 0
        for name, mask in keep.items():  # rank 0 would leave only the bias: keep the most probable one
            if not bool(mask.any()):
                mask[int(torch.argmax(probs[name]))] = True
                revived += 1
        gate_ranks = {name: int(mask.sum()) for name, mask in keep.items()}
        gate_params = self.compiled_params(gate_ranks)
        dropped = project_down(keep, probs, self.shapes, self.budget_params, self.fixed_params)
        projected_params = self.compiled_params({name: int(mask.sum()) for name, mask in keep.items()})
        added = (
            fill_up(keep, probs, self.shapes, self.budget_params, self.fixed_params) if self.config.fill_budget else 0
        )
        for name, gates in self.gates.items():
            # Kept components whose deterministic gate is 0 (revived, filled) get their mean gate.
            z = torch.where(values[name] > 0, values[name], gates.mean_gate())
            gates.frozen_gate = torch.where(keep[name], z, torch.zeros_like(z))
        self.keep = keep
        self.frozen = True
        self.scheduled_sparsity = self.final_sparsity
        ranks = self.kept_ranks()
        filled_params = self.compiled_params(ranks) - projected_params
        self.final_report = self._report(gate_ranks, gate_params, ranks, dropped, added, filled_params, revived)
        report = copy.deepcopy(self.final_report)
        logger.info(
            "Rank pruning: the gates kept %.4f of %d parameters; the projection dropped %d and re-admitted %d "
            "components -> %.4f (budget %.4f).",
            gate_params / self.denominator,
            self.denominator,
            dropped,
            added,
            self.final_report["achieved_fraction"],
            self.config.target_params_fraction,
        )
        return report

    def _report(
        self,
        gate_ranks: dict[str, int],
        gate_params: int,
        ranks: dict[str, int],
        dropped: int,
        added: int,
        filled_params: int,
        revived: int,
    ) -> dict[str, Any]:
        per_matrix: dict[str, dict[str, Any]] = {}
        for name, (in_f, out_f) in self.shapes.items():
            per_matrix[name] = {
                "rank": ranks[name],
                "full_rank": min(in_f, out_f),
                "gate_rank": gate_ranks[name],
                "compiled_params": compiled_size(ranks[name], in_f, out_f),
                "dense_params": in_f * out_f,
                "form": "factorized" if factorized_is_smaller(in_f, out_f, ranks[name]) else "dense",
            }
        kept = self.compiled_params(ranks)
        removed = sum(m["dense_params"] - m["compiled_params"] for m in per_matrix.values())
        return {
            "method": self.name,
            "budget_of": self.config.budget_of,
            "target_params_fraction": self.config.target_params_fraction,
            "budget_params": self.budget_params,
            "params_before": self.denominator,
            "params_after": kept,
            "achieved_fraction": kept / self.denominator,
            "sparsity": 1.0 - kept / self.denominator,
            "gate_fraction": gate_params / self.denominator,
            "projection_dropped_components": dropped,
            "fill_added_components": added,
            # The share of the budget the fill supplied: 0 when the gates landed on the budget
            # (components it re-admits into matrices that compile dense anyway cost nothing).
            "fill_added_fraction": filled_params / self.denominator,
            "revived_components": revived,
            "model_params_before": self.model_params_before,
            "model_params_after": self.model_params_before - removed,
            "per_matrix": per_matrix,
        }

    @torch.no_grad()
    def materialize(self) -> None:
        """Compile each target into ``FactorizedLinear`` (or a dense ``nn.Linear`` where not smaller)."""
        if self.materialized:
            return
        if not self.frozen:
            self.finalize()
        model = self.attached_model
        for name, module in list(self.targets.items()):
            gate = self.gates[name].frozen_gate
            if gate is None:
                raise RuntimeError(f"RankPruning.materialize(): the gates of {name!r} were not frozen.")
            keep = self.keep[name].nonzero().flatten()
            if factorized_is_smaller(*self.shapes[name], keep.numel()):
                up = stored_tensor(module, "original0").detach()
                down = stored_tensor(module, "original1").detach()
                keep = keep.to(up.device)
                z = gate.to(device=up.device, dtype=up.dtype)[keep]
                stored_bias = cast(torch.Tensor | None, module.bias)
                bias = None if stored_bias is None else stored_bias.detach()
                new: nn.Module = FactorizedLinear.from_factors(up[:, keep] * z, down[keep], bias)
                new.train(module.training)
                replace_module(model, name, new)
                self.targets[name] = new
            else:
                # The frozen gate is 0 outside the kept set, so the evaluated weight is P' diag(z') Q'.
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        self.materialized = True

    # ----------------------------------------------------------------------------- logging / resume
    @torch.no_grad()
    def stats(self) -> dict[str, float]:
        if not self.gates:
            return {}
        expected = float(self.expected_kept())
        ranks = self.kept_ranks()
        params = self.compiled_params(ranks)
        probs = torch.cat([g.prob_nonzero().float().to(self._device()) for g in self.gates.values()])
        lambdas = self.lambdas if self.lambdas is not None else torch.zeros(2)
        return {
            "sparsity": 1.0 - params / self.denominator,
            "params_fraction": params / self.denominator,
            "expected_sparsity": 1.0 - expected / self.denominator,
            "expected_factored_sparsity": float(self.expected_factored_sparsity()),
            "expected_params_kept": expected,
            "scheduled_sparsity": self.scheduled_sparsity,
            "target_sparsity": self.final_sparsity,
            "lagrangian": self.last_lagrangian,
            "gap": float(self.controlled_gap()),
            "lambda1": float(lambdas[0]),
            "lambda2": float(lambdas[1]),
            "gate_prob_mean": float(probs.mean()),
            "mean_rank": sum(ranks.values()) / len(ranks),
            "frozen": float(self.frozen),
        }

    def state_dict(self) -> tuple[StateGroups, dict[str, Any]]:
        tensors, metadata = super().state_dict()
        tensors["log_alpha"] = {name: gates.log_alpha.detach() for name, gates in self.gates.items()}
        tensors["frozen_gate"] = {
            name: gates.frozen_gate for name, gates in self.gates.items() if gates.frozen_gate is not None
        }
        tensors["keep"] = dict(self.keep)
        if self.lambdas is not None:
            tensors["lambdas"] = self.lambdas.detach()
        tensors["optimizer"] = optimizer_tensors(self.optimizer)
        metadata.update(
            current_step=self.current_step,
            scheduled_sparsity=self.scheduled_sparsity,
            last_lagrangian=self.last_lagrangian,
            multipliers=None if self.multipliers is None else self.multipliers.state(),
            frozen=self.frozen,
            final_report=self.final_report,
        )
        return tensors, metadata

    @torch.no_grad()
    def load_state_dict(self, tensors: StateGroups, metadata: dict[str, Any]) -> None:
        super().load_state_dict(tensors, metadata)
        if self.optimizer is None or self.lambdas is None:
            raise RuntimeError("RankPruning.load_state_dict() needs attach(model) first.")
        log_alpha, frozen_gates = tensors.get("log_alpha") or {}, tensors.get("frozen_gate") or {}
        for name, gates in self.gates.items():
            gates.log_alpha.copy_(log_alpha[name])
            frozen = frozen_gates.get(name)
            gates.frozen_gate = None if frozen is None else frozen.to(gates.log_alpha.device)
        self.keep = {
            name: value.to(dtype=torch.bool, device=self.gates[name].log_alpha.device)
            for name, value in (tensors.get("keep") or {}).items()
        }
        self.lambdas.copy_(tensors["lambdas"])
        load_optimizer_tensors(self.optimizer, tensors.get("optimizer"))
        self.current_step = int(metadata["current_step"])
        self.scheduled_sparsity = float(metadata["scheduled_sparsity"])
        self.last_lagrangian = float(metadata["last_lagrangian"])
        if self.multipliers is not None:
            self.multipliers.load_state(metadata.get("multipliers"))
        self.frozen = bool(metadata["frozen"])
        self.final_report = metadata["final_report"]


register_method(RankConfig, RankPruning)
