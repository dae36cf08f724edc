"""Checks across rows: the target, duplicates, conflicting labels, train/test overlap, leakage.

Rows are compared through 64-bit hashes: each column's values are hashed (numbers by their float
bits, so "1" and "1.0" match; strings by their trimmed text), and a row's hash mixes its columns'
hashes in column order. Two different rows share a hash with probability about n²/2⁶⁴, which for
a billion rows is still under one in ten; that is the price of never holding rows as Python objects.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from forgeml.checks import catalogue as cat
from forgeml.checks.columns import RowsOf, first, thin
from forgeml.checks.report import Finding
from forgeml.checks.schema import Profile
from forgeml.data.split import MAX_AUTO_CLASSES

MISSING_HASH = np.uint64(0x9E3779B97F4A7C15)


def value_hash(profile: Profile) -> np.ndarray:
    """(N,) uint64: one hash per value, equal for equal values across files, one value for missing."""
    all_numbers = profile.numbers is not None and (
        profile.not_numbers is None or not profile.not_numbers.any()
    )
    hashes = _string_hash(profile) if profile.textual and not all_numbers else None
    if profile.numbers is not None:
        # the bits themselves: equal numbers, equal hashes (+ 0.0 turns -0.0 into 0.0)
        number_hash = (profile.numbers + 0.0).view(np.uint64)
        hashes = number_hash if hashes is None else np.where(np.isnan(profile.numbers), hashes, number_hash)
    assert hashes is not None  # a profile has strings or numbers
    if profile.missing.any():
        hashes[profile.missing] = MISSING_HASH
    return hashes


def _string_hash(profile: Profile) -> np.ndarray:
    """Each distinct trimmed value is hashed once, then looked up by its code (missing: MISSING_HASH)."""
    if profile.coded is not None:
        words, codes = profile.coded.words, profile.coded.codes
    else:
        strings = profile.strings
        encoded = pc.dictionary_encode(
            strings.combine_chunks() if strings.num_chunks != 1 else strings.chunk(0)
        )
        words, codes = encoded.dictionary, encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    texts = words.to_numpy(zero_copy_only=False).astype(object)
    word_hashes = pd.util.hash_array(texts, categorize=False) if len(texts) else np.zeros(0, np.uint64)
    return np.append(word_hashes, MISSING_HASH)[codes]


def image_hash(images: np.ndarray) -> np.ndarray:
    """(N,) uint64: a hash of each image's pixel bytes (BLAKE2b, 8 bytes), equal only for equal pixels.

    An .npz has no table columns but its labels, so comparing rows by columns called every test image
    with a label seen in training a copy. Hashing the pixels compares the images themselves;
    about 1 us per 8x8 image and 5 us per 28x28 one (measured on 70,000 random images).
    """
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    digests = b"".join(hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in flat)
    return np.frombuffer(digests, dtype=np.uint64).copy()


def combine(row_hash: np.ndarray, column_hash: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Fold one column into the row hashes: the column's hashes mixed (:func:`_mix`), xor, then
    multiply by an odd constant (a bijection).

    ``in_place`` overwrites ``row_hash`` instead of allocating a new (N,) array.
    """
    out = row_hash if in_place else None
    mixed = np.bitwise_xor(row_hash, _mix(column_hash), out=out)
    return np.multiply(mixed, np.uint64(0x100000001B3), out=mixed)


def _mix(hashes: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (fmix64), elementwise: every input bit moves every output bit.

    A number's hash is its float bits, and small whole numbers differ only in their top bits; the
    multiply in :func:`combine` carries bits upward only, so without this those differences left the
    64 bits and different rows met: 28,561 distinct rows of four columns of 0-12 had 17,625 hashes,
    and lme4's InstEval (73,421 rows, none repeated) showed ~300 duplicates and 1% train/test overlap.
    """
    mixed = hashes ^ (hashes >> np.uint64(33))
    mixed *= np.uint64(0xFF51AFD7ED558CCD)
    mixed ^= mixed >> np.uint64(33)
    mixed *= np.uint64(0xC4CEB9FE1A85EC53)
    mixed ^= mixed >> np.uint64(33)
    return mixed


def has_repeats(hashes: np.ndarray) -> bool:
    """Whether any hash occurs twice: sorting 8-byte integers is several times faster than hashing them."""
    ordered = np.sort(hashes)
    return bool((ordered[1:] == ordered[:-1]).any())


@dataclass(frozen=True)
class Target:
    """The target column as the row checks need it: task, class codes or numbers, missing mask."""

    name: str
    task: str  # "classification" or "regression"
    codes: np.ndarray | None  # (N,) int64 class codes, -1 where missing (classification)
    classes: tuple[str, ...]
    values: np.ndarray | None  # (N,) float64 (regression)
    missing: np.ndarray


def describe_target(profile: Profile, requested: str = "auto") -> Target:
    """Decide classification vs regression the way the data stage does (``data.split.infer_task``)."""
    numeric = profile.numbers is not None and profile.kind in ("numeric", "boolean", "identifier", "constant")
    task = "classification"
    if requested == "regression" or (requested == "auto" and numeric and profile.schema.distinct > 2):
        present = profile.numbers[~profile.missing]
        whole = bool(np.all(np.isfinite(present)) and np.all(present == np.round(present)))
        if requested == "regression" or not (whole and profile.schema.distinct <= MAX_AUTO_CLASSES):
            task = "regression"
    if task == "regression":
        return Target(profile.name, task, None, (), profile.numbers, profile.missing)
    if profile.coded is not None:  # codes already number the classes in order of first appearance
        codes, dictionary = profile.coded.codes.astype(np.int64), profile.coded.words
    else:
        keys = profile.strings if profile.textual else pa.chunked_array([pa.array(profile.numbers)])
        encoded = pc.dictionary_encode(keys.combine_chunks())
        codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        dictionary = encoded.dictionary
    codes[profile.missing] = -1
    classes = tuple(str(c) for c in dictionary.to_pylist())
    return Target(profile.name, task, codes, classes, None, profile.missing)


def target_findings(target: Target, rows_of: RowsOf) -> list[Finding]:
    findings: list[Finding] = []
    missing = int(target.missing.sum())
    if missing:
        message = f"{missing} rows have no target value"
        findings.append(
            Finding("missing_target", target.name, message, tuple(rows_of(first(target.missing))), missing)
        )
    if target.task != "classification" or target.codes is None:
        return findings
    counts = np.bincount(target.codes[target.codes >= 0], minlength=len(target.classes))
    present = [(name, int(n)) for name, n in zip(target.classes, counts, strict=True) if n > 0]
    if not present:  # every target value is missing: the missing_target finding above says so
        return findings
    if len(present) == 1:
        return [
            *findings,
            Finding(
                "single_class_target",
                target.name,
                f"every row has class {present[0][0]!r}",
                (),
                present[0][1],
            ),
        ]
    for check_id, limit in (("class_too_rare", 2), ("rare_class", cat.RARE_CLASS_ROWS)):
        low = [i for i, n in enumerate(counts) if 0 < n < limit and (check_id == "class_too_rare" or n >= 2)]
        if low:
            mask = np.isin(target.codes, low)
            names = ", ".join(f"{target.classes[i]!r} ({counts[i]} rows)" for i in low[:5])
            findings.append(
                Finding(
                    check_id,
                    target.name,
                    f"classes with fewer than {limit} rows: {names}",
                    tuple(rows_of(first(mask))),
                    int(mask.sum()),
                )
            )
    smallest, largest = min(n for _, n in present), max(n for _, n in present)
    if smallest < cat.IMBALANCE_RATIO * largest:
        message = f"smallest class has {smallest} rows, largest {largest} (ratio {smallest / largest:.3f})"
        findings.append(Finding("class_imbalance", target.name, message, (), smallest))
    return findings


def duplicate_findings(row_hash: np.ndarray, rows_of: RowsOf) -> list[Finding]:
    if not has_repeats(row_hash):  # the usual case, settled without a hash table
        return []
    duplicated = pd.Series(row_hash).duplicated(keep="first").to_numpy()
    count = int(duplicated.sum())
    if not count:
        return []
    return [
        Finding(
            "duplicate_rows",
            None,
            f"{count} rows repeat an earlier row exactly",
            tuple(rows_of(first(duplicated))),
            count,
        )
    ]


def conflict_mask(feature_hash: np.ndarray, target: Target) -> np.ndarray:
    """(N,) bool: rows whose features equal another row's while their (present) labels differ."""
    labelled = ~target.missing
    mask = np.zeros(len(feature_hash), dtype=bool)
    if not has_repeats(feature_hash):
        return mask
    # only rows whose features repeat can conflict; usually few, so group just those
    repeated = labelled & pd.Series(feature_hash).duplicated(keep=False).to_numpy()
    if not repeated.any():
        return mask
    frame = pd.DataFrame({"features": feature_hash[repeated], "label": target.codes[repeated]})
    labels_per_group = frame.groupby("features", sort=False)["label"].transform("nunique").to_numpy()
    mask[np.flatnonzero(repeated)] = labels_per_group > 1
    return mask


def conflict_findings(feature_hash: np.ndarray, target: Target, rows_of: RowsOf) -> list[Finding]:
    if target.task != "classification":
        return []  # equal features with different numbers is ordinary noise in regression
    mask = conflict_mask(feature_hash, target)
    count = int(mask.sum())
    if not count:
        return []
    message = f"{count} rows share their features with a row of a different class"
    return [Finding("conflicting_labels", target.name, message, tuple(rows_of(first(mask))), count)]


def overlap_findings(
    train_hash: np.ndarray, test_hash: np.ndarray, test_source: str, rows_of: RowsOf
) -> list[Finding]:
    shared = pd.Series(test_hash).isin(pd.Series(train_hash).unique()).to_numpy()
    count = int(shared.sum())
    if not count:
        return []
    message = f"{count} rows of the test file {test_source} also appear in the training data (rows are test-file rows)"
    return [Finding("train_test_overlap", None, message, tuple(rows_of(first(shared))), count)]


def leakage_finding(profile: Profile, target: Target) -> Finding | None:
    """A feature that on its own predicts the target almost perfectly (2-fold, binned, out of sample).

    A classification leak at or above LEAKAGE_BLOCK_SCORE blocks (an error: the model would learn the
    answer and its test score would be fake); a weaker one, and any regression one, is a warning.
    """
    step = thin(len(profile.missing))  # a real leak shows on a sample as clearly as on every row
    classification = target.task == "classification"
    codes = _feature_codes(profile, step, cat.LEAKAGE_CLASS_BINS if classification else cat.LEAKAGE_BINS)
    if codes is None:
        return None
    if classification:
        labels = target.codes[::step]
        keep = labels >= 0
    else:
        values = target.values[::step]
        keep = np.isfinite(values)
    if not keep.any():  # no labelled row to learn from: missing_target reports that, not a leak
        return None
    if classification:
        score = _class_power(codes[keep], labels[keep], len(target.classes))
        if score >= cat.LEAKAGE_TREE_FROM and profile.kind == "numeric":  # a tree only where it may matter
            score = max(score, _tree_power(profile.numbers[::step][keep], labels[keep]))
    else:
        score = _regression_power(codes[keep], values[keep])
    if score < cat.LEAKAGE_SCORE:
        return None
    message = f"this feature alone predicts {target.name!r} with score {score:.3f} (1 = perfectly)"
    if classification and score >= cat.LEAKAGE_BLOCK_SCORE:
        message += (
            f"; at or above {cat.LEAKAGE_BLOCK_SCORE} it is taken for a leak (a copy of the answer, or a "
            "previous model's output), so the test score would be fake"
        )
        return Finding("target_leakage", profile.name, message, (), int(keep.sum()))
    return Finding("target_leakage", profile.name, message, (), int(keep.sum()), level="warning")


def _feature_codes(profile: Profile, step: int, bins: int) -> np.ndarray | None:
    """(N,) int64 bins: quantile bins of numbers, or category codes; the last code is 'missing'."""
    if profile.kind in ("identifier", "text", "constant", "datetime") or profile.present < 20:
        return None
    if profile.numbers is not None and profile.kind in ("numeric", "boolean"):
        sample = profile.numbers[::step]
        finite = np.isfinite(sample)
        edges = np.unique(np.quantile(sample[finite], np.linspace(0, 1, bins + 1)[1:-1]))
        codes = np.searchsorted(edges, sample, side="right").astype(np.int64)
        codes[~finite] = len(edges) + 1
        return codes
    if not profile.textual or profile.schema.distinct > 50:
        return None
    if profile.coded is not None:
        codes = profile.coded.codes[::step].astype(np.int64)
        codes[codes < 0] = len(profile.coded.words)
        return codes
    encoded = pc.dictionary_encode(profile.strings.combine_chunks())
    codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy(zero_copy_only=False)
    return codes[::step].astype(np.int64)


def _tree_power(values: np.ndarray, labels: np.ndarray) -> float:
    """Skill of a one-feature decision tree on the other half of the rows (0 = the majority class).

    A tree puts its cuts where the classes change; fixed quantile bins straddle such a cut, and
    the rows of the straddling bin (1% of the table with percentiles, 10% with deciles) cost a
    perfect separator its score. Missing and infinite values go to the tree as NaN.
    """
    from sklearn.tree import DecisionTreeClassifier  # imported here: the checks load without it

    column = np.where(np.isfinite(values), values, np.nan).reshape(-1, 1)
    correct = 0
    for held in (0, 1):  # two folds: even rows and odd rows
        tree = DecisionTreeClassifier(max_leaf_nodes=cat.LEAKAGE_LEAVES, random_state=0)
        tree.fit(column[1 - held :: 2], labels[1 - held :: 2])
        correct += int((tree.predict(column[held::2]) == labels[held::2]).sum())
    base = np.bincount(labels).max() / len(labels)
    return 0.0 if base >= 1 else ((correct / len(labels)) - base) / (1 - base)


def _class_power(codes: np.ndarray, labels: np.ndarray, classes: int) -> float:
    bins, total = int(codes.max()) + 1, len(labels)
    correct = 0
    for held in (0, 1):  # two folds: even rows and odd rows
        train_codes, train_labels = codes[1 - held :: 2], labels[1 - held :: 2]
        table = np.bincount(train_codes * classes + train_labels, minlength=bins * classes).reshape(
            bins, classes
        )
        majority = np.bincount(train_labels, minlength=classes).argmax()
        guess = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), majority)
        correct += int((guess[codes[held::2]] == labels[held::2]).sum())
    base = np.bincount(labels, minlength=classes).max() / total
    return 0.0 if base >= 1 else ((correct / total) - base) / (1 - base)


def _regression_power(codes: np.ndarray, values: np.ndarray) -> float:
    bins = int(codes.max()) + 1
    squared_error = 0.0
    for held in (0, 1):  # two folds: even rows and odd rows
        train_codes, train_values = codes[1 - held :: 2], values[1 - held :: 2]
        counts = np.bincount(train_codes, minlength=bins)
        sums = np.bincount(train_codes, weights=train_values, minlength=bins)
        means = np.where(counts > 0, sums / np.maximum(counts, 1), train_values.mean())
        squared_error += float(((values[held::2] - means[codes[held::2]]) ** 2).sum())
    spread = float(((values - values.mean()) ** 2).sum())
    return 0.0 if spread == 0 else 1.0 - squared_error / spread
