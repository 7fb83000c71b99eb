"""Configuration of rank pruning (:mod:`hf_prune.methods.rank`): budget, gates, controller, schedule.

Example:
    >>> cfg = RankConfig(target_params_fraction=0.3)
    >>> cfg.method, cfg.resolve_schedule(600)
    ('rank', RankSchedule(begin=60, warmup_end=180, end=420))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal, NamedTuple

from ..config import InvalidConfigError, PruningConfig, check_range

# lagrangian_learning_rate=None per controller: anti_windup's is a plain step per unit of gap
# (benchmarks/rank_tuning.py), adam's the learning rate it was tuned with before.
DEFAULT_MULTIPLIER_STEP = {"anti_windup": 0.5, "adam": 5e-2}


class RankSchedule(NamedTuple):
    """The optimizer steps of a rank-pruning run: gates start, target reaches the budget, gates freeze.

    ``begin <= warmup_end <= end`` always holds.

    Example:
        >>> RankSchedule(begin=60, warmup_end=180, end=420).warmup_end
        180
    """

    begin: int
    warmup_end: int
    end: int


@dataclass
class RankConfig(PruningConfig):
    """Factorised low-rank pruning with hard-concrete gates, driven to a parameter budget.

    Example:
        >>> cfg = RankConfig(target_params_fraction=0.3, budget_of="encoder")
        >>> cfg.method, tuple(cfg.resolve_schedule(600))
        ('rank', (60, 180, 420))
    """

    method = "rank"
    # Fields renamed since older versions wrote config files: old name -> current name.
    legacy_field_names: ClassVar[dict[str, str]] = {"warmup_steps": "warmup_end_step"}
    field_hints: ClassVar[dict[str, str]] = {
        "target_sparsity": "rank pruning's budget is target_params_fraction, the fraction of parameters kept "
        "(1 - sparsity), e.g. target_params_fraction=0.2 for 80% sparsity",
    }

    target_params_fraction: float = field(
        default=0.5,
        metadata={"help": "Budget: fraction of parameters kept (see budget_of), in (0, 1]."},
    )
    budget_of: Literal["prunable", "encoder"] = field(
        default="prunable",
        metadata={
            "help": "'prunable': fraction of the target Linear weights; 'encoder': of all encoder "
            "backbone parameters, embeddings and pooler excluded (biases, LayerNorms count as fixed)."
        },
    )
    beta: float = field(default=2.0 / 3.0, metadata={"help": "Hard-concrete temperature, > 0 (FLOP code uses 1)."})
    stretch_left: float = field(default=-0.1, metadata={"help": "Hard-concrete stretch lower end l, < 0."})
    stretch_right: float = field(default=1.1, metadata={"help": "Hard-concrete stretch upper end r, > 1."})
    log_alpha_init: float = field(
        default=3.0,
        metadata={"help": "Initial gate logit; must open the deterministic gates fully (>= log((1-l)/(r-1)))."},
    )
    gate_learning_rate: float = field(
        default=5e-2,
        metadata={"help": "Adam learning rate of the gate logits, > 0 (they must travel ~5 units from the init)."},
    )
    controller: Literal["anti_windup", "adam"] = field(
        default="anti_windup",
        metadata={
            "help": "How the two Lagrange multipliers follow the gap to the target. 'anti_windup': plain "
            "ascent proportional to the gap, l1 released before the gates would coast past the target, the "
            "compiled (dense-capped) size held to the budget once the target is reached; 'adam': the "
            "earlier Adam ascent on the factored size (winds up: overshoots 0.5, falls short of 0.8 and "
            "0.9), kept to reproduce older results (benchmarks/results/rank_tuning.md)."
        },
    )
    lagrangian_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Step size of the multipliers' ascent, > 0; None: 0.5 for controller='anti_windup' "
            "(change of l1 per step and unit of gap), 5e-2 for 'adam' (Adam's learning rate)."
        },
    )
    fill_budget: bool = field(
        default=True,
        metadata={
            "help": "At finalize, when the gates keep less than the budget, re-admit the most probable "
            "dropped components (at their mean gate value) while they fit."
        },
    )
    begin_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Gates and multipliers start training at this fraction of the run: until then the "
            "task head learns on the full-rank model (its gradient is all the gates could follow)."
        },
    )
    warmup_fraction: float = field(
        default=0.3,
        metadata={"help": "The target reaches the budget at this fraction of the run (linear from begin)."},
    )
    end_fraction: float = field(
        default=0.7, metadata={"help": "Gates frozen (finalize) at this fraction of total steps."}
    )
    begin_step: int | None = field(
        default=None, metadata={"help": "Step at which the gates start training (overrides begin_fraction)."}
    )
    warmup_end_step: int | None = field(
        default=None,
        metadata={
            "help": "Step at which the target reaches the budget (overrides warmup_fraction); an absolute "
            "step, not a length (unlike TrainingArguments.warmup_steps)."
        },
    )
    end_step: int | None = field(
        default=None, metadata={"help": "Step at which the gates are frozen (overrides end_fraction)."}
    )

    def validate(self) -> None:
        super().validate()
        check_range("target_params_fraction", self.target_params_fraction, 0.0, 1.0, low_inclusive=False)
        check_range("beta", self.beta, 0.0, math.inf, low_inclusive=False)
        check_range("stretch_left", self.stretch_left, -math.inf, 0.0, high_inclusive=False)
        check_range("stretch_right", self.stretch_right, 1.0, math.inf, low_inclusive=False)
        check_range("gate_learning_rate", self.gate_learning_rate, 0.0, math.inf, low_inclusive=False)
        if self.lagrangian_learning_rate is not None:
            check_range("lagrangian_learning_rate", self.lagrangian_learning_rate, 0.0, math.inf, low_inclusive=False)
        check_range("begin_fraction", self.begin_fraction, 0.0, 1.0)
        check_range("warmup_fraction", self.warmup_fraction, 0.0, 1.0)
        check_range("end_fraction", self.end_fraction, 0.0, 1.0)
        if self.include_embeddings:
            raise InvalidConfigError(
                "RankConfig(include_embeddings=True): rank pruning factorises nn.Linear layers only; "
                "leave include_embeddings=False (embeddings are not counted in either budget)."
            )
        opening = math.log((1.0 - self.stretch_left) / (self.stretch_right - 1.0))
        if self.log_alpha_init < opening + 1e-3:
            raise InvalidConfigError(
                f"log_alpha_init={self.log_alpha_init} leaves the initial deterministic gates below 1 "
                f"for stretch ({self.stretch_left}, {self.stretch_right}), so the model would not start "
                f"as the pretrained one; use log_alpha_init >= {opening + 1e-3:.3f}."
            )
        if self.warmup_fraction > self.end_fraction:
            raise InvalidConfigError(
                f"warmup_fraction={self.warmup_fraction} is after end_fraction={self.end_fraction}; "
                f"the target must be reached before the gates are frozen."
            )
        if self.begin_fraction > self.warmup_fraction:
            raise InvalidConfigError(
                f"begin_fraction={self.begin_fraction} is after warmup_fraction={self.warmup_fraction}; "
                f"the gates must start before the target reaches the budget."
            )
        for name in ("begin_step", "warmup_end_step", "end_step"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise InvalidConfigError(f"{name}={value} is negative; use a step >= 0 or None.")
        warmup_end, end = self.warmup_end_step, self.end_step
        if warmup_end is not None and end is not None and warmup_end > end:
            raise InvalidConfigError(f"warmup_end_step={warmup_end} is after end_step={end}.")

    @property
    def target_sparsity(self) -> float:
        """The pruned fraction the budget implies, ``1 - target_params_fraction`` (read-only, for reports).

        Example:
            >>> round(RankConfig(target_params_fraction=0.3).target_sparsity, 3)
            0.7
        """
        return 1.0 - self.target_params_fraction

    @property
    def multiplier_step_size(self) -> float:
        """``lagrangian_learning_rate``, or the default of the chosen ``controller`` when it is None.

        Example:
            >>> RankConfig().multiplier_step_size, RankConfig(controller="adam").multiplier_step_size
            (0.5, 0.05)
        """
        if self.lagrangian_learning_rate is not None:
            return self.lagrangian_learning_rate
        return DEFAULT_MULTIPLIER_STEP[self.controller]

    def resolve_schedule(self, total_steps: int) -> RankSchedule:
        """The (begin, warm-up end, gate freeze) optimizer steps for a run of ``total_steps``.

        Explicit steps override the fractions. The warm-up never ends after the freeze and the
        gates never start after the warm-up ends, so ``begin <= warmup_end <= end``.

        Example:
            >>> RankConfig().resolve_schedule(600)
            RankSchedule(begin=60, warmup_end=180, end=420)
            >>> RankConfig(warmup_end_step=20, end_step=50).resolve_schedule(600)
            RankSchedule(begin=20, warmup_end=20, end=50)
        """
        warmup_end = (
            self.warmup_end_step if self.warmup_end_step is not None else round(self.warmup_fraction * total_steps)
        )
        end = self.end_step if self.end_step is not None else round(self.end_fraction * total_steps)
        begin = self.begin_step if self.begin_step is not None else round(self.begin_fraction * total_steps)
        return RankSchedule(begin=min(begin, warmup_end), warmup_end=warmup_end, end=max(warmup_end, end))
