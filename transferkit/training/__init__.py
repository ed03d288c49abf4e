"""The one training loop and its parts: stages, callbacks, checkpoints, batches, parameter groups, LR finder.

Every strategy that trains a network (fine-tuning now; domain adaptation and multi-task later) goes
through :class:`Trainer`; see :mod:`transferkit.training.loop` for the contract.
"""

from .callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    EpochLogger,
    FreezeUnfreeze,
    History,
    ProgressBar,
    WeightAverage,
)
from .checkpoint import clear_state, has_state, load_state, save_state
from .data import ItemBatches, stratified_split
from .loop import Trainer
from .lr_finder import LRFinderResult, LRRangeTest, lr_range_test, suggest
from .optim import block_param_groups
from .types import Batches, Stage, StepOutput, Task, TrainerLike, TrainingDivergedError

__all__ = [
    "Batches",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EpochLogger",
    "FreezeUnfreeze",
    "History",
    "ItemBatches",
    "LRFinderResult",
    "LRRangeTest",
    "ProgressBar",
    "Stage",
    "StepOutput",
    "Task",
    "Trainer",
    "TrainerLike",
    "TrainingDivergedError",
    "WeightAverage",
    "block_param_groups",
    "clear_state",
    "has_state",
    "load_state",
    "lr_range_test",
    "save_state",
    "stratified_split",
    "suggest",
]
