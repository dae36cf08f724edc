"""forgeml tune end to end on the tiny mixed table: trials are run folders, best.yaml reproduces the best
trial exactly, the study continues where it stopped, the report opens offline in Chromium, and bad
input is one line before any trial starts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from conftest import launch_chromium, mixed_table_config, needs_chromium
from forgeml import api
from forgeml.config import load_config
from forgeml.errors import ConfigError
from forgeml.extras import MissingExtraError
from forgeml.training.callbacks import EpochResult, TrainState
from forgeml.tuning.pruning import PruningCallback
from forgeml.tuning.space import search_space

SPACE = {
    "train.learning_rate": {"log_uniform": [1e-3, 1e-1]},
    "model.hidden": {"choice": [[8], [16, 8]]},
}


def tune_config(folder: Path, **tune: object) -> Path:
    return mixed_table_config(
        folder,
        train={"epochs": 2},
        evaluate={"bootstrap": 0, "permutation_repeats": 0},
        tune={"trials": 3, "space": SPACE, **tune},
    )


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("tune")
    config = tune_config(folder)
    return config, api.tune(load_config(config))


def test_each_trial_is_a_run_folder_and_best_yaml_reproduces_it(tuned, tmp_path: Path) -> None:
    config_path, outcome = tuned
    runs = config_path.parent / "runs" / "tiny"
    assert sorted(p.name for p in (runs / "trials").iterdir()) == ["0", "1", "2"]
    assert [row["state"] for row in outcome.rows] == ["complete"] * 3
    values = [row["value"] for row in outcome.rows]
    assert values == sorted(values, reverse=True) and outcome.best_value == values[0]
    best_trial = runs / "trials" / str(outcome.best_number)
    trial_metrics = json.loads((best_trial / "bundle" / "bundle.json").read_text())["metrics"]["validation"]
    assert trial_metrics["metrics"]["accuracy"] == outcome.best_value
    # the test split was scored once, for the best trial only
    assert [p.parent.name for p in (runs / "trials").glob("*/metrics.json")] == [str(outcome.best_number)]
    tested = json.loads((best_trial / "metrics.json").read_text())["metrics"]
    assert outcome.test_metrics == tested
    run = api.train(load_config(outcome.best_config, [f"output_dir={tmp_path}"]))  # forgeml run's training
    rerun = json.loads((run.bundle_path / "bundle.json").read_text())["metrics"]["validation"]["metrics"]
    assert rerun == trial_metrics["metrics"]  # exactly, every validation metric
    best = yaml.safe_load(outcome.best_config.read_text())
    assert best["train"]["learning_rate"] == outcome.rows[0]["settings"]["train.learning_rate"]


def test_running_again_continues_and_a_dead_workers_trial_is_retried_once(tuned) -> None:
    """What kill -9 leaves (a RUNNING trial whose process is gone) is failed and retried, never counted;
    the finished trials stay as they were and the study grows to the new tune.trials."""
    config_path, first = tuned
    journal = config_path.parent / "runs" / "tiny" / "tune" / "journal.log"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="tiny", storage=storage)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    crashed = study.ask({"train.learning_rate": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
                         "model.hidden": optuna.distributions.CategoricalDistribution(["[8]", "[16, 8]"])})  # fmt: skip
    crashed.set_user_attr("worker", f"{socket.gethostname()}:{int(dead.stdout)}")
    outcome = api.tune(load_config(config_path, ["tune.trials=5"]))
    states = {row["trial"]: row["state"] for row in outcome.rows}
    assert states == {0: "complete", 1: "complete", 2: "complete", 3: "failed", 4: "complete", 5: "complete"}
    assert {row["trial"]: row["value"] for row in outcome.rows if row["trial"] < 3} == {
        row["trial"]: row["value"] for row in first.rows
    }
    retry = study.trials[4]
    assert retry.user_attrs["retry_of"] == crashed.number and retry.params == crashed.params
    assert study.trials[5].params != study.trials[0].params  # a continued study does not replay its draws


@needs_chromium
def test_report_renders_offline_in_chromium(tuned) -> None:
    import playwright.sync_api as playwright

    _, outcome = tuned
    html = outcome.report_path.read_text()
    assert "validation split only" in html and "http://" not in html and "https://" not in html
    url = outcome.report_path.resolve().as_uri()
    requests: list[str] = []
    errors: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = launch_chromium(driver)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url, wait_until="load")
            images = page.eval_on_selector_all("img", "images => images.map(i => [i.alt, i.naturalWidth])")
        finally:
            browser.close()
    assert errors == []
    assert [r for r in requests if r != url and not r.startswith("data:")] == []
    assert {alt for alt, width in images if width > 0} == {
        "Optimisation history", "Parameter importances", "Parallel coordinates"
    }  # fmt: skip


def test_pruning_stops_training_after_the_epoch() -> None:
    class Trial:
        def __init__(self) -> None:
            self.reported: list[tuple[float, int]] = []

        def report(self, value: float, step: int) -> None:
            self.reported.append((value, step))

        def should_prune(self) -> bool:
            return len(self.reported) == 2

    trial = Trial()
    callback = PruningCallback(trial, maximize=True)
    state = TrainState(model=None, epochs=5, steps_per_epoch=1)  # type: ignore[arg-type]
    callback.on_epoch_end(state, EpochResult(1, 0.9, 0.7, 0.1))
    assert not state.should_stop
    callback.on_epoch_end(state, EpochResult(2, 0.8, 0.6, 0.1))
    assert trial.reported == [(-0.7, 1), (-0.6, 2)]  # accuracy is maximised: lower loss reads higher
    assert state.should_stop and callback.pruned_at == 2 and "pruned at epoch 2" in (state.stop_reason or "")


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"train.learnig_rate": {"uniform": [0.001, 0.1]}}, "unknown key 'train.learnig_rate'. Did you mean 'learning_rate'?"),
        ({"train.epochs": {"uniform": [1, 3]}}, "train.epochs input should be a valid integer"),
        ({"train.learning_rate": {"uniform": [0.0, 0.1]}}, "train.learning_rate input should be greater than 0"),
        ({"train.learning_rate": {"log_uniform": [0.1, 0.001]}}, "low <= high, got [0.1, 0.001]; swap them"),
    ],
)  # fmt: skip
def test_a_bad_search_space_is_refused_before_any_trial(tmp_path: Path, space: dict, message: str) -> None:
    config = mixed_table_config(tmp_path, tune={"space": space})
    with pytest.raises(ConfigError) as error:
        api.tune(load_config(config))
    assert message in str(error.value)
    assert not (tmp_path / "runs").exists()


def test_an_unreachable_storage_is_refused_before_any_trial(tmp_path: Path) -> None:
    config = tune_config(tmp_path)
    url = f"sqlite:///{tmp_path}/missing/dir/study.db"
    with pytest.raises(ConfigError, match="cannot open the study's database") as error:
        api.tune(load_config(config), storage=url)
    assert error.value.key == "--storage" and url in str(error.value)
    assert not (tmp_path / "runs" / "tiny" / "trials").exists()
    with pytest.raises(ConfigError) as error:  # a password in the URL is never printed
        api.tune(load_config(config), storage="postgresql://ana:s3cret@127.0.0.1:1/db")
    assert "ana:***@127.0.0.1" in str(error.value) and "s3cret" not in str(error.value)


def test_auto_without_a_space_says_what_to_do(tmp_path: Path) -> None:
    config = mixed_table_config(tmp_path, model={"type": "auto"}, train={})
    with pytest.raises(ConfigError, match="model.type auto already searches"):
        api.tune(load_config(config))


def test_the_mlps_default_space_searches_a_tables_embedding_and_scaling(tmp_path: Path) -> None:
    # the two choices that decided tables on the tuning tables (docs/tables.md), each checked by the schema
    config = load_config(mixed_table_config(tmp_path, model={"type": "mlp"}, tune={"trials": 2}))
    space = search_space(config)
    assert space["model.numeric_embedding"].choice == ["none", "periodic"]
    assert space["features.numeric.scale"].choice == ["auto", "standard", "quantile"]
    assert "model.hidden" in space and "train.learning_rate" in space  # the network keys stay


def test_without_the_extras_tune_and_tracking_name_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tune_config(tmp_path, trials=1)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(MissingExtraError, match=r'forgeml tune needs optuna.*pip install "forgeml\[tune\]"'):
        api.tune(load_config(config))
    monkeypatch.setitem(sys.modules, "mlflow", None)
    tracked = load_config(config, ["track.mlflow.experiment=x"])
    with pytest.raises(MissingExtraError, match=r'pip install "forgeml\[track\]"'):
        api.train(tracked)
    assert not (tmp_path / "runs").exists()


def test_a_pruned_trial_shows_its_models_validation_metric_not_its_last_epoch_report() -> None:
    from forgeml.tuning.report import leaderboard

    study = optuna.create_study(direction="maximize")
    lr = {"train.learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True)}
    study.add_trial(optuna.trial.create_trial(params={"train.learning_rate": 1e-2}, distributions=lr, value=0.9,
                                              user_attrs={"metric": "accuracy"}))  # fmt: skip
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.PRUNED,
            params={"train.learning_rate": 1e-5},
            distributions=lr,
            intermediate_values={1: -0.69},  # the negated epoch loss the pruner compared
            user_attrs={"metric": "accuracy", "validation": {"accuracy": 0.55}, "pruned_at": 1},
        )
    )
    rows = leaderboard(study, maximize=True)
    assert [(row["trial"], row["state"], row["value"], row["note"]) for row in rows] == [
        (0, "complete", 0.9, ""),
        (1, "pruned", 0.55, "pruned at epoch 1"),
    ]
