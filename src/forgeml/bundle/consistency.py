"""A predictor's ``bundle.json`` must agree with itself before its model is built.

The manifest says some things twice: the labels (``task.labels`` and the fitted target's
``features.target.labels``), the model's output width (``model.output_dim``, which the labels
decide), the input columns (``input_schema``, which the server's request model is built from, and the
fitted feature state under ``features``) and the network's input sizes (``model.spec``). forgeml
writes each pair from one value, so a disagreement means the file was edited (or corrupted):
loading refuses it with a BundleError naming the field, instead of serving predictions whose labels
or inputs are shifted. This complements the digest (:mod:`forgeml.bundle.integrity`), which catches
any edit but only when a digest is given.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from forgeml.bundle.manifest import MANIFEST
from forgeml.errors import BundleError
from forgeml.features import FeaturePipeline


def check_consistent(path: Path, manifest: dict[str, Any]) -> FeaturePipeline:
    """Refuse a predictor manifest whose repeated facts disagree; return its fitted pipeline."""
    where = path / MANIFEST
    try:
        pipeline = FeaturePipeline.from_json(manifest["features"])
        task, model = manifest["task"], manifest["model"]
        output_dim, labels = int(model["output_dim"]), list(task["labels"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise BundleError(f"{where}: malformed manifest ({type(exc).__name__}: {exc}).") from None
    fitted = list(pipeline.task.labels)
    if labels != fitted:
        raise BundleError(
            f"{where}: task.labels {labels} differ from the fitted target's features.target.labels "
            f"{fitted}; bundle.json was edited. Re-export the bundle from its run."
        )
    if pipeline.task.kind == "binary" and len(fitted) != 2:
        raise BundleError(
            f"{where}: features.target.labels has {len(fitted)} labels {fitted} but a binary model has "
            f"one output (model.output_dim {output_dim}) for exactly 2; bundle.json was edited. "
            "Re-export the bundle from its run."
        )
    if output_dim != pipeline.target_.output_dim:
        raise BundleError(
            f"{where}: model.output_dim is {output_dim} but a {pipeline.task.kind} task with "
            f"{len(fitted)} label(s) needs {pipeline.target_.output_dim}; bundle.json was edited. "
            "Re-export the bundle from its run."
        )
    _check_schema(where, manifest.get("input_schema"), pipeline)
    _check_spec(where, model.get("spec"), pipeline)
    return pipeline


def _check_spec(where: Path, listed: object, pipeline: FeaturePipeline) -> None:
    """``model.spec`` (the network's input sizes) equals the fitted features' on every key it has.

    Only the keys the bundle wrote are compared, so a bundle written before a key was added still loads.
    """
    expected = json.loads(json.dumps(asdict(pipeline.input_spec)))  # tuples as JSON lists
    if not isinstance(listed, dict):
        return
    for key, value in listed.items():
        if key in expected and value != expected[key]:
            raise BundleError(
                f"{where}: model.spec.{key} is {value!r} but the fitted features give {expected[key]!r}; "
                "bundle.json was edited. Re-export the bundle from its run."
            )


def _check_schema(where: Path, listed: object, pipeline: FeaturePipeline) -> None:
    """``input_schema`` (what requests are checked against) equals the one the fitted features imply."""
    from forgeml.bundle.predictive import input_schema

    expected = input_schema(pipeline)
    if listed == expected:
        return
    if not isinstance(listed, dict) or listed.get("image") != expected["image"]:
        raise BundleError(f"{where}: input_schema.image does not match the fitted image features.")
    columns = listed.get("columns")
    names = (
        [c.get("name") for c in columns]
        if isinstance(columns, list) and all(isinstance(c, dict) for c in columns)
        else None
    )
    fitted = [c["name"] for c in expected["columns"]]
    if names != fitted:
        raise BundleError(
            f"{where}: input_schema.columns lists {names} but the fitted features take {fitted}; "
            "bundle.json was edited. Re-export the bundle from its run."
        )
    column = next(a["name"] for a, b in zip(columns, expected["columns"], strict=True) if a != b)
    raise BundleError(
        f"{where}: input_schema.columns entry {column!r} does not match the fitted features (its kind "
        "or categories differ); bundle.json was edited. Re-export the bundle from its run."
    )
