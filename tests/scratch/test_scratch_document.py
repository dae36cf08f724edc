"""--compare-document: every wrong step of the document's 4.3 example is named, with a true reason."""

from __future__ import annotations

import numpy as np
import pytest

from forgeml.errors import ConfigError
from forgeml.scratch import compare_document, explain
from forgeml.scratch.document import DOCUMENT


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_every_wrong_step_is_named() -> None:
    comparison = compare_document()
    wrong = {row.step for row in comparison.wrong}
    right = {row.step for row in comparison.rows if row.matches}
    assert right == {"W_in", "b_in", "W_hid", "b_hid", "b_out", "σ(z) = e^z / (1 + e^z)"}
    expected_wrong = {
        "network (4.3 text)",  # hidden-layer count
        "activation (4.3 text)",
        "loss (4.3 text)",
        "W_out",  # 1x1 vs 1x2
        "a_1^[1] = W_in · x + b_in",  # first-layer arithmetic
        "a_2^[1] = max(0, a_1^[1])",
        "z_1^[2] = W_hid · a + b_hid",
        "a_1^[2] = σ(z_1^[2])",
        "z_2^[2] = W_out · a + b_out",
        "ŷ = σ(z_2^[2])",
        "Loss = ½ (y - ŷ)²",
        "δ_2^[2] = ŷ - y",
        "σ'(z_2^[2]) used in δ_1^[2]",  # derivative values
        "δ_1^[2] = (W_out)ᵀ · δ_2^[2] · σ'",
        "σ'(z_1^[2]) used in δ_2^[1]",
        "δ_2^[1] = (W_hid)ᵀ · δ_1^[2] · σ'",
        "ΔW_out = δ_2^[2] · a_1^[2]ᵀ",
        "Δb_out = δ_2^[2]",
        "W_out = W_out + α ΔW_out",  # the + update
        "b_out = b_out + α Δb_out",
        "W_hid update",
        "b_hid update",
        "W_in update",
        "b_in update",
        "Adam (4.2)",
        "cross-entropy (4.2)",
        "loss after the update",  # the + update climbs the loss
    }
    assert wrong == expected_wrong
    assert all(row.why for row in comparison.wrong)


def test_printed_numbers_are_compared_not_assumed() -> None:
    """Each numeric entry is wrong because the values differ, checked against the walkthrough."""
    result = explain()
    for entry in DOCUMENT:
        if entry.key and entry.printed is not None and entry.why:
            printed, correct = np.asarray(entry.printed, float), np.asarray(result.value(entry.key), float)
            assert printed.shape != correct.shape or np.abs(printed - correct).max() > 10.0**-entry.decimals


def test_the_documents_update_sign_climbs_the_loss() -> None:
    row = compare_document().rows[-1]
    assert row.step == "loss after the update"
    assert row.document > explain().value("loss") > row.correct


def test_reasons_quote_true_arithmetic() -> None:
    """The numbers the reasons quote from the document's own inputs are what they say."""
    w_hid, b_hid = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([0.1, 0.2])
    np.testing.assert_allclose(w_hid @ [0.9, 1.4] + b_hid, [0.47, 1.03])
    np.testing.assert_allclose(_sigmoid(np.array([0.58, 1.48])), [0.641, 0.815], atol=5e-4)
    assert np.array([0.1, 0.1]) @ [0.588, 0.862] + 0.1 == pytest.approx(0.245)
    assert _sigmoid(0.294) == pytest.approx(0.573, abs=5e-4)
    assert pytest.approx(0.1035, abs=5e-5) == 0.5 * (1 - 0.545) ** 2
    np.testing.assert_allclose(
        np.array([0.588, 0.862]) * 0.455 * np.array([0.545, 0.133]), [0.146, 0.052], atol=5e-4
    )
    np.testing.assert_allclose(w_hid @ [0.133, 0.146] * np.array([0.414, 0.086]), [0.018, 0.008], atol=5e-4)
    assert pytest.approx(0.1455) == 0.1 + 0.1 * 0.455
    assert max(_sigmoid(z) * (1 - _sigmoid(z)) for z in np.linspace(-10, 10, 2001)) <= 0.25


def test_comparison_refuses_other_examples() -> None:
    with pytest.raises(ConfigError, match="--compare-document checks the document's own example") as caught:
        compare_document(explain(inputs="0,1,0"))
    assert caught.value.key == "--compare-document"
