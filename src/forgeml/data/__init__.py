"""The data stage: read a source, resolve the task, split rows repeatably.

``load_data(cfg, seed)`` is the stage's one public function; it returns :class:`Splits`.
"""

from __future__ import annotations

import logging

import numpy as np

from forgeml.config import DataConfig
from forgeml.data.sources import DEFAULT_TARGET, RawData, load_source
from forgeml.data.split import Splits, TaskInfo, infer_task, split_rows

logger = logging.getLogger(__name__)
__all__ = ["DEFAULT_TARGET", "RawData", "Splits", "TaskInfo", "load_data", "load_source"]


def _drop_missing_targets(raw: RawData) -> RawData:
    """Rows without a target cannot be learned from; drop them, loudly.

    The cleaning gate blocks such data (check id ``missing_target``) unless the user allowed it, so
    reaching here with missing targets means the user chose to train on the labelled rows only.
    """
    assert raw.target is not None
    missing = raw.target.isna().to_numpy()
    if not missing.any():
        return raw
    rows = ", ".join(str(row + 1) for row in np.flatnonzero(missing)[:5])
    logger.warning("dropping %d rows with no target value (data rows %s)", int(missing.sum()), rows)
    return raw.take(np.flatnonzero(~missing))


def load_data(config: DataConfig, *, seed: int) -> Splits:
    """Load ``config.source`` and split it into train, validation and test.

    With ``config.test_source`` the test rows come from that file and the source is split into
    train and validation only, so a team's own hold-out set is never mixed into training.
    """
    raw = _drop_missing_targets(
        load_source(config.source, config.target, allow_outside_paths=config.allow_outside_paths)
    )
    assert raw.target is not None  # load_source(require_target=True) guarantees it
    task = infer_task(raw.target, config.task)
    if config.test_source is None:
        train, validation, test = split_rows(raw, config.split, task, seed)
    else:
        test = load_source(config.test_source, config.target, allow_outside_paths=config.allow_outside_paths)
        no_test = config.split.model_copy(update={"test": 0.0})
        train, validation, _ = split_rows(raw, no_test, task, seed)
    return Splits(train=train, validation=validation, test=test, task=task)
