"""Signing a bundle and checking its signature, with OpenSSF model-signing (sigstore's model-transparency).

``forgeml sign BUNDLE --key private.pem`` signs in key mode, offline: model-signing hashes every
file of the folder (``bundle.json`` included) into a manifest, signs it with the elliptic-curve
private key (PEM; P-256, P-384 or P-521) and writes a sigstore bundle, :data:`SIGNATURE`
(``model.sig``), into the bundle folder. Inside rather than beside it, because a bundle is copied and
shipped as one folder: a signature left behind would leave every copy "unsigned". The signature
leaves itself out of what it signs (an ignored path recorded in the signed manifest), and
:func:`forgeml.bundle.manifest.verify_files` accepts that one unlisted file. model-signing's own
CLI (``model_signing verify key``) checks the same file with the public key.

``verify_key=`` (``--verify-key``) refuses a bundle without a signature, signed by another key, or
with any file added, removed or changed since it was signed. Nothing here is our own cryptography.
The package comes with the ``sign`` extra (``pip install "forgeml[sign]"``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from forgeml.bundle.integrity import verified_manifest
from forgeml.bundle.manifest import SIGNATURE
from forgeml.errors import BundleError, ConfigError
from forgeml.extras import require


def sign_bundle(path: str | Path, *, key: str | Path) -> Path:
    """Sign the bundle at ``path`` with the private key file ``key``; return the signature's path.

    The bundle's files are checked against ``bundle.json`` first, so a tampered bundle is never
    signed. An existing signature is replaced (atomically).
    """
    path, key = Path(path), Path(key)
    model_signing = _model_signing("forgeml sign")
    verified_manifest(path)
    _readable(key, "--key")
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE], ignore_git_paths=False)
    signer = model_signing.signing.Config().set_hashing_config(hashing)
    handle, staging = tempfile.mkstemp(prefix=".forgeml-sig-", dir=path.parent)
    os.close(handle)
    try:
        signer.use_elliptic_key_signer(private_key=key).sign(path, staging)
        os.chmod(staging, 0o644)  # mkstemp's 0600 would hide a public signature from other users
        os.replace(staging, path / SIGNATURE)
    except (ValueError, TypeError) as exc:  # not a PEM private key, an encrypted one, an RSA key
        raise ConfigError(
            f"--key {key}: not an unencrypted elliptic-curve private key in PEM ({_first_line(exc)}). "
            "Make one with: openssl ecparam -name prime256v1 -genkey -noout -out private.pem",
            key="--key",
        ) from None
    finally:
        Path(staging).unlink(missing_ok=True)
    return path / SIGNATURE


def verify_signature(path: str | Path, public_key: str | Path) -> None:
    """Refuse the bundle (BundleError) unless ``model.sig`` verifies every file with ``public_key``."""
    path, public_key = Path(path), Path(public_key)
    model_signing = _model_signing("--verify-key")
    _readable(public_key, "--verify-key")
    signature = path / SIGNATURE
    if not signature.is_file():
        raise BundleError(
            f"{path}: not signed ({SIGNATURE} is missing) and --verify-key asks for a signature. "
            "Sign it with: forgeml sign BUNDLE --key private.pem"
        )
    try:
        verifier = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public_key)
    except ValueError as exc:
        raise ConfigError(
            f"--verify-key {public_key}: not an elliptic-curve public key in PEM ({_first_line(exc)}).",
            key="--verify-key",
        ) from None
    try:
        verifier.verify(path, signature)
    except Exception as exc:  # model-signing raises several types; all mean "refuse"
        raise BundleError(
            f"{path}: signature check failed with {public_key.name}: {_reason(exc)}. The bundle "
            "changed after it was signed, or another key signed it; do not load it."
        ) from None


def _model_signing(feature: str) -> Any:
    require("model_signing", "sign", feature)
    import model_signing.hashing
    import model_signing.signing
    import model_signing.verifying

    return model_signing


def _readable(key: Path, flag: str) -> None:
    if not key.is_file():
        raise ConfigError(f"{flag} {key}: no such file. Pass a PEM key file.", key=flag)


def _reason(exc: BaseException) -> str:
    """model-signing's verdict in one short line: the changed files' names rather than their hashes."""
    # the names sit inside a repr of a list, so a quote may come escaped (\\') depending on the hash bytes
    changed = re.findall(r"mismatch for \\*'([^'\\]+)\\*'", str(exc))
    if changed:
        return f"{', '.join(changed)} changed since it was signed"
    return _first_line(exc)[:300]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
