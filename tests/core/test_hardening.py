"""Issue 18, items 4 and 5: bad input is one line and an exit code, and nothing non-finite gets out."""

from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_mixed_table, write_config
from forgeml.cli import main
from forgeml.config import load_config
from forgeml.data import load_source
from forgeml.data.tables import parse_json_line
from forgeml.errors import ConfigError, DataError, StorageError, UnsafeArtifactError
from forgeml.training.checkpoint import FORMAT_VERSION, CheckpointStore, load_checkpoint

BASE = "data:\n  source: x.csv\n  target: y\nmodel:\n  type: mlp\n"


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(BASE + text, encoding="utf-8")
    return path


def test_a_duplicate_yaml_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _config(tmp_path, "train:\n  epochs: 3\n  epochs: 5\n")
    with pytest.raises(ConfigError, match="'epochs' appears twice") as caught:
        load_config(path)
    assert caught.value.key == "epochs"


@pytest.mark.parametrize(
    "text", ["train:\n  epochs: true\n", "train:\n  batch_size: yes\n", "train:\n  learning_rate: true\n"]
)
def test_a_bool_is_not_a_number(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="not true/false"):
        load_config(_config(tmp_path, text))


@pytest.mark.parametrize(
    ("key", "value"),
    [("epochs", 10**26), ("batch_size", 2**20 + 1), ("accumulate", 10**9), ("keep_checkpoints", 10**6)],
)
def test_sizes_have_upper_bounds(tmp_path: Path, key: str, value: int) -> None:
    with pytest.raises(ConfigError, match=f"train.{key} input should be less than or equal to"):
        load_config(_config(tmp_path, f"train:\n  {key}: {value}\n"))


def test_a_layer_width_has_an_upper_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="model.mlp.hidden.0|model.hidden"):
        load_config(_config(tmp_path, "  hidden: [100000000]\n"))


def test_yaml_floats_and_plain_ints_still_load(tmp_path: Path) -> None:
    config = load_config(
        _config(tmp_path, "train:\n  epochs: 7\n  learning_rate: 1e-3\n  batch_size: 1048576\n")
    )
    assert (config.train.epochs, config.train.learning_rate, config.train.batch_size) == (7, 1e-3, 2**20)


# --- item 4: one line, no traceback, the documented exit code ---------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    assert err.startswith("error:"), err
    return err


def _table_config(folder: Path, frame, **sections: dict) -> Path:
    data = folder / "table.csv"
    frame.to_csv(data, index=False)
    return write_config(folder / "config.yaml", str(data), data={"target": "churned"}, **sections)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    config = _table_config(folder, make_mixed_table(), train={"epochs": 2})
    assert main(["train", str(config)]) == 0
    return folder / "runs" / "tiny" / "bundle"


def test_an_all_null_target_is_a_blocked_gate_not_a_traceback(tmp_path: Path, capsys) -> None:
    frame = make_mixed_table()
    frame["churned"] = None
    assert main(["train", str(_table_config(tmp_path, frame))]) == 1
    assert "missing_target" in _one_line_error(capsys)


def test_an_all_null_target_past_the_gate_is_a_data_error(tmp_path: Path) -> None:
    frame = make_mixed_table()
    frame["churned"] = None
    frame.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="'churned' is empty in all 200 rows"):
        load_source(str(tmp_path / "t.csv"), "churned")


def test_an_npz_whose_inputs_and_labels_differ_in_length(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((30, 3)), y=np.arange(20) % 2)
    config = write_config(tmp_path / "config.yaml", str(tmp_path / "d.npz"))
    assert main(["train", str(config)]) == 2
    assert "30 rows but the labels have 20" in _one_line_error(capsys)


def test_json_lines_nested_100000_deep(tmp_path: Path, capsys) -> None:
    deep = '{"age": ' + "[" * 100_000 + "]" * 100_000 + ', "churned": "yes"}'
    with pytest.raises(DataError, match="nested too deeply"):
        parse_json_line(tmp_path / "x.jsonl", 1, deep)
    rows = [json.dumps(r) for r in make_mixed_table(40).to_dict("records")]
    (tmp_path / "t.jsonl").write_text("\n".join([*rows, deep]) + "\n", encoding="utf-8")
    config = write_config(tmp_path / "config.yaml", str(tmp_path / "t.jsonl"), data={"target": "churned"})
    assert main(["train", str(config)]) == 2
    assert "line 41: nested too deeply" in _one_line_error(capsys)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch /tmp/forgeml-hardening-pwned",))


def test_resume_from_a_pickle_payload_is_an_unsafe_artifact_error(tmp_path: Path, capsys) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT_VERSION, "gadget": _RunsCode()}, evil)
    with pytest.raises(UnsafeArtifactError, match="refused, not loaded"):
        load_checkpoint(evil)
    config = _table_config(tmp_path, make_mixed_table())
    assert main(["train", str(config), "--resume", str(evil)]) == 2
    assert "refused, not loaded" in _one_line_error(capsys)
    assert not Path("/tmp/forgeml-hardening-pwned").exists()


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    store.save({"format": FORMAT_VERSION, "global_step": 1, "w": torch.ones(2)}, best=True)
    monkeypatch.setattr(torch, "save", _disk_full)
    with pytest.raises(StorageError) as caught:
        store.save({"format": FORMAT_VERSION, "global_step": 2, "w": torch.zeros(2)})
    message = str(caught.value)
    assert (
        "step-00000002.pt" in message
        and "disk is full" in message
        and "previous checkpoints are intact" in message
        and "\n" not in message
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "step-00000001.pt"]  # no temporary left
    assert torch.equal(load_checkpoint(tmp_path / "step-00000001.pt")["w"], torch.ones(2))


def test_disk_full_while_training_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    config = _table_config(tmp_path, make_mixed_table(), train={"epochs": 2, "checkpoint_every": 3})
    monkeypatch.setattr(torch, "save", _disk_full)
    assert main(["train", str(config)]) == 2
    error = _one_line_error(capsys)
    assert ".pt: could not be written" in error and "disk is full" in error


def test_disk_full_while_predict_writes_keeps_the_previous_output(
    tiny_bundle: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    source = tmp_path / "in.csv"
    make_mixed_table(50).drop(columns="churned").to_csv(source, index=False)
    output = tmp_path / "out.csv"
    output.write_text("previous\n", encoding="utf-8")
    from forgeml.deploy import predict

    monkeypatch.setattr(predict._Sink, "_write", _disk_full)
    assert main(["predict", str(tiny_bundle), str(source), "-o", str(output)]) == 2
    error = _one_line_error(capsys)
    assert f"{output}: could not be written" in error and "previous out.csv is intact" in error
    assert output.read_text(encoding="utf-8") == "previous\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.csv")] == []


def test_serve_on_a_port_in_use_exits_3_naming_the_port(tiny_bundle: Path, capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(tiny_bundle), "--host", "127.0.0.1", "--port", str(port)]) == 3
    error = _one_line_error(capsys)
    assert f"port {port} on 127.0.0.1 is already in use" in error and "--port" in error
    assert "uvicorn" not in error.lower() and "errno" not in error.lower()


# --- item 5: never emit a non-finite number -----------------------------------------------------------


def test_batch_predict_refuses_a_value_that_overflows_after_scaling(
    tiny_bundle: Path, tmp_path: Path, capsys
) -> None:
    frame = make_mixed_table(50).drop(columns="churned")
    frame.loc[2, "income"] = 1e308
    frame.to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", str(tiny_bundle), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 2
    error = _one_line_error(capsys)
    assert "column 'income', row 3: 1e+308 is too large" in error
    assert not (tmp_path / "out.csv").exists()


def test_the_python_api_refuses_it_with_row_and_column(tiny_bundle: Path) -> None:
    import forgeml

    rows = make_mixed_table(5).drop(columns="churned").to_dict("records")
    rows[4]["age"] = 1e308
    with pytest.raises(DataError, match="too large") as caught:
        forgeml.load(tiny_bundle).predict(rows)
    assert (caught.value.column, caught.value.row) == ("age", 5)


def test_a_non_finite_output_is_an_error_not_an_empty_cell(
    tiny_bundle: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    from forgeml.bundle.predictor import Predictor

    real_run = Predictor.run

    def nan_in_row_2(self, feeds):
        outputs = real_run(self, feeds).copy()
        outputs[1] = np.nan
        return outputs

    monkeypatch.setattr(Predictor, "run", nan_in_row_2)
    make_mixed_table(10).drop(columns="churned").to_csv(tmp_path / "in.csv", index=False)
    assert main(["predict", str(tiny_bundle), str(tmp_path / "in.csv"), "-o", str(tmp_path / "out.csv")]) == 2
    assert "row 2: the model's output is not a finite number" in _one_line_error(capsys)
    assert not (tmp_path / "out.csv").exists()


def test_the_server_answers_422_naming_the_field_never_nan(tiny_bundle: Path, tmp_path: Path) -> None:
    import httpx

    from conftest import start_server, stop_server

    process, base = start_server(tiny_bundle, log=tmp_path / "server.log")
    try:
        good = {"age": 41.0, "income": 52000.0, "city": "paris", "plan": "pro"}
        answer = httpx.post(f"{base}/v1/predict", json={"rows": [good, {**good, "income": 1e308}]})
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["field"] == "rows[1].income" and "too large" in error["message"]
        assert httpx.post(f"{base}/v1/predict", json={"rows": [good]}).status_code == 200
    finally:
        stop_server(process)


def test_weight_loading_names_the_missing_extra_and_misshapen_keys(tmp_path: Path) -> None:
    import safetensors.torch
    from torch import nn

    from forgeml.bundle.predictive import _load_weights
    from forgeml.errors import BundleError

    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    del weights["2.bias"]
    weights["3.weight"] = torch.zeros(1)
    weights["0.weight"] = torch.zeros(8, 5)
    safetensors.torch.save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(BundleError) as caught:
        _load_weights(model, tmp_path / "model.safetensors")
    message = str(caught.value)
    assert "missing: 2.bias" in message and "unexpected: 3.weight" in message
    assert "wrong shape: 0.weight (file [8, 5], model [8, 4])" in message
    assert "Error(s) in loading state_dict" not in message


def test_disk_full_while_writing_a_bundle_folder_keeps_the_previous_one(tmp_path: Path) -> None:
    from forgeml import atomic

    target = tmp_path / "bundle"
    target.mkdir()
    (target / "model.safetensors").write_text("old", encoding="utf-8")
    with (
        pytest.raises(StorageError, match="bundle: could not be written .*the previous bundle is intact"),
        atomic.replace_folder(target) as staging,
    ):
        (staging / "model.safetensors").write_text("new", encoding="utf-8")
        _disk_full()
    assert (target / "model.safetensors").read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
