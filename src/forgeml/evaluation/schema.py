"""Check that rows to evaluate have the columns the model was trained on, and nothing unexpected.

A file given with ``--data`` that lacks a training column, or carries columns training never saw,
usually means the wrong file or a renamed column; one error names all of them at once.
"""

from __future__ import annotations

from collections.abc import Collection

from forgeml.data import RawData
from forgeml.errors import DataError
from forgeml.features import FeaturePipeline


def check_columns(rows: RawData, pipeline: FeaturePipeline, *, ignored: Collection[str] = ()) -> None:
    """Raise one DataError naming every missing and every extra column of ``rows``.

    ``ignored`` are columns that may be present without being inputs (``features.exclude``, ids).
    The target is already split off ``rows`` by ``load_source``.
    """
    expected = list(pipeline.input_columns)
    present = [str(column) for column in rows.table.columns]
    missing = [column for column in expected if column not in present]
    extra = [column for column in present if column not in expected and column not in set(ignored)]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    if extra:
        problems.append(f"unexpected column{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}")
    if (rows.images is None) != (pipeline.image_ is None):
        problems.append(
            "images " + ("missing" if rows.images is None else "present but the model takes none")
        )
    if problems:
        raise DataError(
            f"{rows.source}: the columns do not match the training schema: {'; '.join(problems)}. "
            f"The model was trained on {', '.join(expected) or 'images only'}. "
            "Rename or drop columns so the file matches, or evaluate a run trained on this layout.",
            path=rows.source,
            column=(missing or extra or [None])[0],
        )
