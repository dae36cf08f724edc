"""The whole bundle is verifiable (issue 18, item 1): a digest over every file and bundle.json, OpenSSF
model-signing signatures, and a bundle.json that contradicts itself refused with the field named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import forgeml
from forgeml.bundle.integrity import bundle_digest
from forgeml.errors import BundleError, ConfigError


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conftest import mixed_table_config

    folder = tmp_path_factory.mktemp("trust")
    return forgeml.train(mixed_table_config(folder, train={"epochs": 2})).bundle_path


def _copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "copy"))


def _edit(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads((bundle / "bundle.json").read_text())
    change(manifest)
    (bundle / "bundle.json").write_text(json.dumps(manifest, indent=2))


def _swap_labels(manifest: dict[str, Any]) -> None:
    """Both copies of the labels, so the bundle stays self-consistent and only the digest can tell."""
    for record in (manifest["task"], manifest["features"]["target"]):
        record["labels"] = record["labels"][::-1]


def _activation(manifest: dict[str, Any]) -> None:
    manifest["model"]["config"]["activation"] = "tanh"


def _scale_means(manifest: dict[str, Any]) -> None:
    numeric = manifest["features"]["numeric"]
    numeric["means"] = [mean * 10 for mean in numeric["means"]]


@pytest.mark.parametrize("change", [_swap_labels, _activation, _scale_means])
def test_an_edited_bundle_json_changes_the_digest_and_is_refused(
    trained: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    bundle = _copy(trained, tmp_path)
    pinned = bundle_digest(bundle)
    forgeml.load(bundle, digest=pinned)  # the untouched copy passes
    _edit(bundle, change)
    forgeml.load(bundle)  # each edit alone still loads: only the digest catches it
    assert bundle_digest(bundle) != pinned
    with pytest.raises(BundleError, match=f"bundle digest [0-9a-f]{{64}} is not the expected {pinned}"):
        forgeml.load(bundle, digest=pinned)


def test_the_digest_ignores_the_write_time_and_the_json_layout(trained: Path, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    pinned = bundle_digest(bundle)
    _edit(bundle, lambda manifest: manifest.update(created="2000-01-01T00:00:00+00:00"))
    assert bundle_digest(bundle) == pinned
    with pytest.raises(ConfigError, match="--expect-digest must be 64 hex digits"):
        forgeml.load(bundle, digest="abc")
    forgeml.load(bundle, digest="sha256:" + pinned.upper())


def test_a_changed_weights_file_changes_the_digest_through_its_checksum(
    trained: Path, tmp_path: Path
) -> None:
    bundle = _copy(trained, tmp_path)
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="weights.safetensors: checksum mismatch"):
        bundle_digest(bundle)


def test_serve_with_a_wrong_digest_exits_2_before_the_port_opens(trained: Path) -> None:
    from conftest import forgeml as cli

    result = cli("serve", trained, "--expect-digest", "0" * 64, "--port", "1")
    assert result.returncode == 2, result.stderr
    assert "is not the expected 000" in result.stderr and "Traceback" not in result.stderr
    assert "Uvicorn running" not in result.stderr + result.stdout


def test_export_prints_the_new_digest_and_predict_checks_it(trained: Path, tmp_path: Path) -> None:
    from conftest import forgeml as cli

    bundle = _copy(trained, tmp_path)
    before = bundle_digest(bundle)
    exported = cli("export", bundle)
    assert exported.returncode == 0, exported.stderr
    after = bundle_digest(bundle)
    assert after != before and f"bundle digest: {after}" in exported.stdout
    rows = tmp_path / "rows.csv"
    rows.write_text("age,income,city,plan\n40,50000,paris,pro\n")
    refused = cli("predict", bundle, rows, "-o", tmp_path / "out.csv", "--expect-digest", before)
    assert refused.returncode == 2 and "is not the expected" in refused.stderr
    assert not (tmp_path / "out.csv").exists()
    done = cli("predict", bundle, rows, "-o", tmp_path / "out.csv", "--expect-digest", after)
    assert done.returncode == 0, done.stderr


# signatures: OpenSSF model-signing in key mode, with a key pair made here (no network)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("model_signing", reason='needs pip install "forgeml[sign]"')
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    folder = tmp_path_factory.mktemp("keys")
    paths = {}
    for name in ("ours", "theirs"):
        private = ec.generate_private_key(ec.SECP256R1())
        paths[f"{name}.pem"] = folder / f"{name}.pem"
        paths[f"{name}.pem"].write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        paths[f"{name}.pub"] = folder / f"{name}.pub"
        paths[f"{name}.pub"].write_bytes(
            private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return paths


def test_a_signed_bundle_loads_and_keeps_its_digest(
    trained: Path, tmp_path: Path, keys: dict[str, Path]
) -> None:
    bundle = _copy(trained, tmp_path)
    pinned = bundle_digest(bundle)
    assert forgeml.sign(bundle, key=keys["ours.pem"]) == bundle / "model.sig"
    assert bundle_digest(bundle) == pinned  # the signature is not part of what it signs
    forgeml.load(bundle, verify_key=keys["ours.pub"], digest=pinned)
    with pytest.raises(BundleError, match="signature check failed with theirs.pub"):
        forgeml.load(bundle, verify_key=keys["theirs.pub"])


@pytest.mark.parametrize("change", [_swap_labels, _activation, _scale_means])
def test_a_bundle_edited_after_signing_is_refused(
    trained: Path, tmp_path: Path, keys: dict[str, Path], change: Callable[[dict[str, Any]], None]
) -> None:
    bundle = _copy(trained, tmp_path)
    forgeml.sign(bundle, key=keys["ours.pem"])
    _edit(bundle, change)
    with pytest.raises(BundleError, match="bundle.json changed since it was signed"):
        forgeml.load(bundle, verify_key=keys["ours.pub"])


def test_unsigned_and_badly_keyed_bundles_are_refused(
    trained: Path, tmp_path: Path, keys: dict[str, Path]
) -> None:
    bundle = _copy(trained, tmp_path)
    with pytest.raises(BundleError, match="not signed"):
        forgeml.load(bundle, verify_key=keys["ours.pub"])
    with pytest.raises(ConfigError, match="--key .*not an unencrypted elliptic-curve private key"):
        forgeml.sign(bundle, key=keys["ours.pub"])
    with pytest.raises(ConfigError, match="--verify-key .*no such file"):
        forgeml.load(bundle, verify_key=tmp_path / "missing.pub")


def test_cli_sign_then_serve_refuses_a_tampered_bundle_with_exit_2(
    trained: Path, tmp_path: Path, keys: dict[str, Path]
) -> None:
    from conftest import forgeml as cli

    bundle = _copy(trained, tmp_path)
    signed = cli("sign", bundle, "--key", keys["ours.pem"])
    assert signed.returncode == 0 and "model.sig" in signed.stdout, signed.stderr
    _edit(bundle, _scale_means)
    result = cli("serve", bundle, "--verify-key", keys["ours.pub"], "--port", "1")
    assert result.returncode == 2, result.stderr
    assert "bundle.json changed since it was signed" in result.stderr and "Traceback" not in result.stderr


# bundle.json must agree with itself, whether or not a digest or key is given


def test_labels_that_do_not_fit_the_output_width_are_refused(trained: Path, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    _edit(bundle, lambda manifest: manifest["model"].update(output_dim=3))
    with pytest.raises(
        BundleError, match=r"model\.output_dim is 3 but a binary task with 2 label\(s\) needs 1"
    ):
        forgeml.load(bundle)
    bundle = _copy(trained, tmp_path / "labels")

    def three_labels(manifest: dict[str, Any]) -> None:
        for record in (manifest["task"], manifest["features"]["target"]):
            record["labels"] = ["no", "yes", "maybe"]

    _edit(bundle, three_labels)
    with pytest.raises(BundleError, match=r"features\.target\.labels has 3 labels"):
        forgeml.load(bundle)


def test_labels_listed_twice_must_agree(trained: Path, tmp_path: Path) -> None:
    bundle = _copy(trained, tmp_path)
    _edit(bundle, lambda manifest: manifest["task"].update(labels=["yes", "no"]))
    with pytest.raises(BundleError, match=r"task\.labels \['yes', 'no'\] differ .*features\.target\.labels"):
        forgeml.load(bundle)


def test_an_input_schema_that_contradicts_the_fitted_features_is_refused(
    trained: Path, tmp_path: Path
) -> None:
    bundle = _copy(trained, tmp_path)
    _edit(bundle, lambda manifest: manifest["input_schema"]["columns"].pop())
    with pytest.raises(BundleError, match=r"input_schema\.columns lists .* but the fitted features take"):
        forgeml.load(bundle)
    bundle = _copy(trained, tmp_path / "columns")
    _edit(bundle, lambda manifest: manifest["features"]["numeric"]["columns"].reverse())
    with pytest.raises(BundleError, match=r"input_schema\.columns lists \['age', 'income'"):
        forgeml.load(bundle)
    bundle = _copy(trained, tmp_path / "categories")
    _edit(bundle, lambda manifest: manifest["input_schema"]["columns"][2]["categories"].pop())
    with pytest.raises(BundleError, match=r"input_schema\.columns entry 'city' does not match"):
        forgeml.load(bundle)


def test_train_prints_the_digest_after_the_bundle_line(tmp_path: Path) -> None:
    from conftest import forgeml as cli
    from conftest import mixed_table_config

    result = cli("train", mixed_table_config(tmp_path, train={"epochs": 1}))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if "; bundle: " in line)
    bundle = Path(lines[at].rsplit("; bundle: ", 1)[1].strip())
    assert lines[at + 1] == f"bundle digest: {bundle_digest(bundle)}"


def test_a_language_model_bundle_has_a_digest_over_its_own_weights_file(tmp_path: Path) -> None:
    """Language-model bundles name their weights model.safetensors; the digest checks that file too."""
    from forgeml.bundle.causal_lm import WEIGHTS
    from forgeml.bundle.manifest import file_record, header

    (tmp_path / WEIGHTS).write_bytes(b"weights")
    manifest = header("causal_lm") | {"files": {WEIGHTS: file_record(tmp_path / WEIGHTS)}}
    (tmp_path / "bundle.json").write_text(json.dumps(manifest))
    pinned = bundle_digest(tmp_path)
    (tmp_path / WEIGHTS).write_bytes(b"changed")
    with pytest.raises(BundleError, match=f"{WEIGHTS}: checksum mismatch"):
        bundle_digest(tmp_path)
    assert len(pinned) == 64


@pytest.mark.parametrize(
    "text",
    [
        "Signature mismatch: ['Hash mismatch for 'bundle.json': Expected ...']",
        # repr escapes the quotes when the expected hash bytes themselves hold a quote
        "Signature mismatch: [\"Hash mismatch for \\'bundle.json\\': Expected Digest(b'\\x9d')\"]",
        "Signature mismatch: ['Hash mismatch for \\\\\\'bundle.json\\\\\\': Expected']",
    ],
)
def test_the_refusal_names_the_changed_file_however_model_signing_quotes_it(text: str) -> None:
    from forgeml.bundle.signing import _reason

    assert _reason(ValueError(text)) == "bundle.json changed since it was signed"
