"""The data stage: read a source, resolve the task, split rows repeatably.

``load_data(cfg, seed)`` is the stage's one public function; it returns :class:`Splits`.
"""

from __future__ import annotations

from forgeml.config import DataConfig
from forgeml.data.sources import DEFAULT_TARGET, RawData, load_source
from forgeml.data.split import Splits, TaskInfo, infer_task, split_rows

__all__ = ["DEFAULT_TARGET", "RawData", "Splits", "TaskInfo", "load_data", "load_source"]


def load_data(config: DataConfig, *, seed: int) -> Splits:
    """Load ``config.source`` and split it into train, validation and test.

    With ``config.test_source`` the test rows come from that file and the source is split into
    train and validation only, so a team's own hold-out set is never mixed into training.
    """
    raw = load_source(config.source, config.target)
    assert raw.target is not None  # load_source(require_target=True) guarantees it
    task = infer_task(raw.target, config.task)
    if config.test_source is None:
        train, validation, test = split_rows(raw, config.split, task, seed)
    else:
        test = load_source(config.test_source, config.target)
        no_test = config.split.model_copy(update={"test": 0.0})
        train, validation, _ = split_rows(raw, no_test, task, seed)
    return Splits(train=train, validation=validation, test=test, task=task)
