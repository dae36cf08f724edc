"""One digest for a whole bundle, ``bundle.json`` included, and the checks that refuse a changed one.

Each file's sha256 sits in ``bundle.json`` (:func:`forgeml.bundle.manifest.verify_files`), but
nothing covered ``bundle.json`` itself: swapping the labels or changing an activation there changed
predictions silently. The **bundle digest** covers both. It is the sha256 (hex) of the bytes::

    b"forgeml-bundle-digest/1\\n" + canonical_json({
        "files": [[name, sha256], ...],   # every file but bundle.json and model.sig, sorted by name
        "manifest": bundle.json less "created" and "files",
    })

where ``canonical_json`` is ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=True)`` encoded as UTF-8 (keys sorted at every depth, no spaces, floats as Python's
shortest repr), and each ``sha256`` is the file's hex digest from disk (checked equal to its record in
``bundle.json`` first). ``created`` (the write time) is left out so the same model written twice has
one digest; ``files`` is left out because the list above restates it (sizes follow from the bytes).
``model.sig`` is left out because it signs the bundle, so signing does not change the digest. Any
other change to ``bundle.json`` (a label, an activation, a fitted mean) or to a file changes it.

``forgeml train``, ``forgeml export`` and ``forgeml compress`` print it; ``forgeml serve
--expect-digest HEX``, ``forgeml predict --expect-digest HEX`` and ``forgeml.load(path, digest=HEX)``
refuse a bundle whose digest differs. A digest pins a bundle you already trust; a signature
(:mod:`forgeml.bundle.signing`) says who wrote it.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from forgeml.bundle.manifest import read_manifest, verify_files
from forgeml.config import CAUSAL_LM
from forgeml.errors import BundleError, ConfigError

DIGEST_DOMAIN = b"forgeml-bundle-digest/1\n"
# manifest keys the digest leaves out, each with why (module docstring)
VOLATILE = ("created", "files")
_HEX = re.compile(r"[0-9a-f]{64}")


class TrustOptions(BaseModel):
    """What a bundle must prove before it is loaded: the options of serve and predict (and load)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str | None = Field(
        default=None,
        description="refuse the bundle unless its digest (printed by train, export and compress) is this hex",
    )
    verify_key: Path | None = Field(
        default=None,
        description="refuse the bundle unless its model.sig verifies with this public key (PEM), "
        "as written by forgeml sign",
    )


# the CLI spells the digest option --expect-digest: it checks a digest, it does not print one
TRUST_FLAGS = {"digest": ("--expect-digest",)}


def manifest_digest(manifest: dict[str, Any]) -> str:
    """The bundle digest (module docstring) from a manifest whose ``files`` records match the disk.

    Only :func:`bundle_digest` (or a caller that ran :func:`verify_files`) may call this: the file
    hashes are taken from the records, which are worth nothing unchecked.
    """
    files = sorted([name, record["sha256"]] for name, record in manifest["files"].items())
    body = {"files": files, "manifest": {k: v for k, v in manifest.items() if k not in VOLATILE}}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(DIGEST_DOMAIN + text.encode("utf-8")).hexdigest()


def verified_manifest(path: Path) -> dict[str, Any]:
    """``bundle.json`` of either kind, after every file it lists is checked against its sha256."""
    manifest = read_manifest(path)
    # the language model's weights file, named here to keep torch and transformers unimported
    verify_files(path, manifest, weights="model.safetensors" if manifest["kind"] == CAUSAL_LM else None)
    return manifest


def bundle_digest(path: str | Path) -> str:
    """The digest of the bundle at ``path`` (module docstring); BundleError if a file fails its check."""
    return manifest_digest(verified_manifest(Path(path)))


def check_bundle(
    path: str | Path, *, digest: str | None = None, verify_key: str | Path | None = None
) -> None:
    """Refuse the bundle (BundleError, one line) unless it has ``digest`` and verifies with ``verify_key``.

    Nothing is checked when both are None. Called before a model is loaded or a port is opened.
    """
    path = Path(path)
    options = TrustOptions(digest=digest, verify_key=verify_key)
    if options.verify_key is not None:
        from forgeml.bundle.signing import verify_signature

        verify_signature(path, options.verify_key)
    if options.digest is not None:
        expected = _expected_digest(options.digest)
        actual = bundle_digest(path)
        if actual != expected:
            raise BundleError(
                f"{path}: bundle digest {actual} is not the expected {expected}; bundle.json or a file "
                "changed since that digest was printed. Use the bundle it was printed for, or re-export."
            )


def _expected_digest(text: str) -> str:
    digest = text.strip().lower().removeprefix("sha256:")
    if not _HEX.fullmatch(digest):
        raise ConfigError(
            f"--expect-digest must be 64 hex digits (as forgeml train prints it), got {text!r}.",
            key="--expect-digest",
        )
    return digest
