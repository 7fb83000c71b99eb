"""Multitask pruning: one shared encoder, a head per task, a task mixture and its trainer.

Example:
    >>> from hf_prune.multitask import MultitaskModel, TaskHead
"""

from .model import MultitaskModel, TaskHead, task_heads

__all__ = ["MultitaskModel", "TaskHead", "task_heads"]
