"""Optuna's distributed mode on one machine: `forgeml tune --jobs 2` runs two processes on one journal file
(the same mechanism as the same command started twice, or on several machines with --storage URL)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest

from conftest import mixed_table_config
from forgeml.cli import main


@pytest.mark.slow  # a spawned worker imports torch and forgeml afresh
def test_two_processes_share_one_study_and_no_trial_runs_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = mixed_table_config(
        tmp_path,
        train={"epochs": 1},
        evaluate={"bootstrap": 0, "permutation_repeats": 0},
        tune={"trials": 4, "space": {"train.learning_rate": {"log_uniform": [1e-3, 1e-1]}}},
    )
    assert main(["tune", str(config), "--jobs", "2"]) == 0  # the CLI in this process; it spawns one helper
    journal = tmp_path / "runs" / "tiny" / "tune" / "journal.log"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    # the trials add up: 4, plus at most one that both workers asked for at the same moment
    assert 4 <= len(finished) <= 5 and len(finished) == len(trials)
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # each number handed out once
    folders = sorted(int(p.name) for p in (tmp_path / "runs" / "tiny" / "trials").iterdir())
    assert folders == list(range(len(trials)))  # one run folder per trial, none trained twice
    per_worker = Counter(t.user_attrs["worker"] for t in trials)
    assert len(per_worker) == 2 and all(count >= 1 for count in per_worker.values())
    printed = capsys.readouterr().out
    assert f"{len(finished)} finished, 0 pruned, 0 failed" in printed and "best config:" in printed
