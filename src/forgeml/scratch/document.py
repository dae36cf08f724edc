"""The document's section 4.3 numbers, transcribed, and a step-by-step comparison with the right ones.

``DOCUMENT`` holds what the document prints, in its order, with the reason each wrong value is
wrong. ``compare_document`` checks every printed number against the walkthrough (a number matches
when it agrees to the decimals the document printed), so a claim here that is not actually wrong
would show up as a match rather than be asserted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from forgeml.errors import ConfigError
from forgeml.scratch.walkthrough import Explanation, Numbers, explain

Printed = Numbers | str | None


@dataclass(frozen=True)
class DocumentValue:
    """One thing the document prints: the walkthrough step it claims to be, its value and why it is off."""

    key: str  # the walkthrough step key, or "" for a claim in words
    step: str  # the document's own notation
    printed: Printed  # None: the document never computes it
    decimals: int
    why: str
    correct_text: str = ""  # for claims in words: what is right


def _claim(step: str, printed: str, correct: str, why: str = "") -> DocumentValue:
    """A claim in words; listed with a ``why`` only when it is wrong."""
    return DocumentValue("", step, printed, 0, why, correct)


_SIGMA_LIMIT = "σ'(z) = σ(z)(1 - σ(z)) is at most 0.25"
_MISSING = "the document stops after the output layer, but one gradient-descent step updates every layer"
_NOT_COMPUTED = [
    DocumentValue(key, f"{name} update", None, 0, _MISSING)
    for key, name in (("new_W2", "W_hid"), ("new_b2", "b_hid"), ("new_W1", "W_in"), ("new_b1", "b_in"))
]

DOCUMENT: tuple[DocumentValue, ...] = (
    _claim(
        "network (4.3 text)",
        "3 inputs, one hidden layer of 2 neurons, 1 output",
        "3 -> 2 -> 2 -> 1 (two hidden layers)",
        "the example has two hidden layers: W_in is 2x3 and W_hid is 2x2, so it is 3 -> 2 -> 2 -> 1",
    ),
    _claim(
        "activation (4.3 text)",
        "ReLU",
        "relu, sigmoid, sigmoid",
        "only the first layer uses ReLU; the second layer and the output use sigmoid",
    ),
    _claim(
        "loss (4.3 text)",
        "mean squared error (MSE)",
        "½ (y - ŷ)²",
        "the formula used is ½ Σ (y - ŷ)², half the sum of squares; the mean form (y - ŷ)² is twice it",
    ),
    _claim("σ(z) = e^z / (1 + e^z)", "e^z / (1 + e^z)", "1 / (1 + e^-z), the same function"),
    DocumentValue("W1", "W_in", ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6)), 1, ""),
    DocumentValue("b1", "b_in", (0.1, 0.2), 1, ""),
    DocumentValue("W2", "W_hid", ((0.1, 0.2), (0.3, 0.4)), 1, ""),
    DocumentValue("b2", "b_hid", (0.1, 0.2), 1, ""),
    DocumentValue(
        "W3",
        "W_out",
        ((0.1,),),
        1,
        "printed 1x1, but it multiplies the 2-vector a[2], so it must be 1x2; we take [[0.1, 0.1]]",
    ),
    DocumentValue("b3", "b_out", (0.1,), 1, ""),
    DocumentValue(
        "z1",
        "a_1^[1] = W_in · x + b_in",
        (0.9, 1.4),
        1,
        "first-layer arithmetic: for x = [1, 0, 1] it is [0.1 + 0.3 + 0.1, 0.4 + 0.6 + 0.2] = [0.5, 1.2]; "
        "every later number inherits this error",
    ),
    DocumentValue(
        "a1", "a_2^[1] = max(0, a_1^[1])", (0.9, 1.4), 1, "ReLU is applied correctly, but to the wrong z[1]"
    ),
    DocumentValue(
        "z2",
        "z_1^[2] = W_hid · a + b_hid",
        (0.58, 1.48),
        2,
        "wrong even from the document's own a = [0.9, 1.4], which gives [0.47, 1.03]",
    ),
    DocumentValue(
        "a2",
        "a_1^[2] = σ(z_1^[2])",
        (0.588, 0.862),
        3,
        "not σ of the document's own z = [0.58, 1.48], which is [0.641, 0.815]",
    ),
    DocumentValue(
        "z3",
        "z_2^[2] = W_out · a + b_out",
        (0.294,),
        3,
        "a 1x1 W_out cannot multiply a 2-vector; with [[0.1, 0.1]] and the document's own a it is 0.245",
    ),
    DocumentValue(
        "a3", "ŷ = σ(z_2^[2])", (0.545,), 3, "σ(0.294) = 0.573, so wrong even from the document's own z"
    ),
    DocumentValue(
        "loss",
        "Loss = ½ (y - ŷ)²",
        0.1025,
        4,
        "½ (1 - 0.545)² = 0.1035, so wrong even from the document's own ŷ",
    ),
    DocumentValue(
        "delta3",
        "δ_2^[2] = ŷ - y",
        (0.455,),
        3,
        "two mistakes: 0.545 - 1 is -0.455 (the sign is lost), and for ½ (y - ŷ)² after a sigmoid the delta "
        "is (ŷ - y) σ'(z[3]); ŷ - y alone is the delta of sigmoid with cross-entropy",
    ),
    DocumentValue(
        "dact2",
        "σ'(z_2^[2]) used in δ_1^[2]",
        (0.545, 0.133),
        3,
        f"derivative values: {_SIGMA_LIMIT}, so 0.545 is impossible; and the hidden layer needs "
        "σ'(z_1^[2]), not the output layer's σ'(z_2^[2])",
    ),
    DocumentValue(
        "delta2",
        "δ_1^[2] = (W_out)ᵀ · δ_2^[2] · σ'",
        (0.133, 0.146),
        3,
        "multiplies a[2] = [0.588, 0.862] where W_outᵀ belongs; even that product is [0.146, 0.052], "
        "not the printed numbers",
    ),
    DocumentValue(
        "dact1",
        "σ'(z_1^[2]) used in δ_2^[1]",
        (0.414, 0.086),
        3,
        "derivative values: layer 1 uses ReLU, whose derivative is 1 where z > 0, so here [1, 1]",
    ),
    DocumentValue(
        "delta1",
        "δ_2^[1] = (W_hid)ᵀ · δ_1^[2] · σ'",
        (0.027, 0.039),
        3,
        "multiplies W_hid, not its transpose, by wrong deltas and derivatives; even its own product "
        "W_hid · [0.133, 0.146] ⊙ [0.414, 0.086] is [0.018, 0.008]",
    ),
    DocumentValue(
        "grad_W3",
        "ΔW_out = δ_2^[2] · a_1^[2]ᵀ",
        ((0.267,), (0.393,)),
        3,
        "δ aᵀ is a 1x2 row, W_out's shape; the document prints a 2x1 column, from the wrong δ",
    ),
    DocumentValue(
        "grad_b3", "Δb_out = δ_2^[2]", (0.455,), 3, "equals δ[3], so it inherits its sign and missing σ'"
    ),
    DocumentValue(
        "new_W3",
        "W_out = W_out + α ΔW_out",
        ((0.367,), (0.493,)),
        3,
        "the update adds the gradient, which climbs the loss (gradient descent subtracts); it also drops "
        "α: 0.1 + 0.1 · 0.267 = 0.127, not 0.367",
    ),
    DocumentValue(
        "new_b3",
        "b_out = b_out + α Δb_out",
        (0.155,),
        3,
        "adds instead of subtracting, and 0.1 + 0.1 · 0.455 = 0.1455, not 0.155",
    ),
    *_NOT_COMPUTED,
    _claim(
        "Adam (4.2)",
        "W - α m / (√v + ε)",
        "W - α m̂ / (√v̂ + ε)",
        "omits the bias correction m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t) of Kingma & Ba (2015), so the "
        "first step is about 3.16 α instead of α; see forgeml explain --optimizer adam_uncorrected",
    ),
    _claim(
        "cross-entropy (4.2)",
        "-Σ y log ŷ",
        "-(y log ŷ + (1 - y) log(1 - ŷ)) for one sigmoid output",
        "that is the multi-class one-hot form; binary cross-entropy also needs the (1 - y) log(1 - ŷ) term",
    ),
)


@dataclass(frozen=True)
class ComparisonRow:
    """One step: what the document prints, the right value, whether they agree, and why not."""

    step: str
    document: Printed
    correct: Numbers | str
    decimals: int
    matches: bool
    why: str


@dataclass(frozen=True)
class DocumentComparison:
    """Every row of the comparison; ``wrong`` lists the rows where the document is wrong."""

    rows: tuple[ComparisonRow, ...]

    @property
    def wrong(self) -> tuple[ComparisonRow, ...]:
        """The rows where the document's value or claim is wrong."""
        return tuple(row for row in self.rows if not row.matches)

    def to_dict(self) -> dict[str, object]:
        """Return plain lists, floats and strings, ready for ``json.dumps``."""
        return asdict(self)


def compare_document(explanation: Explanation | None = None) -> DocumentComparison:
    """Compare the document's printed 4.3 numbers with the walkthrough's, step by step.

    Only the document's own example can be compared; any other input raises ``ConfigError``.
    """
    if explanation is None:
        explanation = explain()
    if not explanation.network.is_document_example() or explanation.learning_rate != 0.1:
        raise ConfigError(
            "--compare-document checks the document's own example; drop --input, --target, --activations, "
            "--loss, --lr and --weights, or drop --compare-document.",
            key="--compare-document",
        )
    rows = [_row(entry, explanation) for entry in DOCUMENT]
    rows.append(_update_sign_row(explanation))
    return DocumentComparison(tuple(rows))


def _row(entry: DocumentValue, explanation: Explanation) -> ComparisonRow:
    if not entry.key:
        matches = not entry.why  # a claim in words is listed with a reason only when it is wrong
        return ComparisonRow(entry.step, entry.printed, entry.correct_text, 0, matches, entry.why)
    correct = explanation.value(entry.key)
    matches = entry.printed is not None and _agrees(entry.printed, correct, entry.decimals)
    why = "" if matches else entry.why or "differs from the correct value"
    return ComparisonRow(entry.step, entry.printed, correct, entry.decimals, matches, why)


def _agrees(printed: Printed, correct: Numbers, decimals: int) -> bool:
    """True when shapes are equal and every number rounds to what the document printed."""
    document, right = np.asarray(printed, dtype=float), np.asarray(correct, dtype=float)
    if document.shape != right.shape:
        return False
    return bool(np.all(np.abs(document - right) <= 0.5 * 10.0**-decimals + 1e-12))


def _update_sign_row(explanation: Explanation) -> ComparisonRow:
    """Apply the document's ``W + α ∇W`` with the correct gradients and show that the loss goes up."""
    model = explanation.network.build()
    x, y = np.array([explanation.network.inputs]), np.array([explanation.network.target])
    model.backward(x, y, model.forward(x))
    for parameter, gradient in zip(model.parameters(), model.gradients(), strict=True):
        parameter += explanation.learning_rate * gradient  # the document's sign, on purpose
    climbed = model.compute_loss(model.forward(x), y)
    before, after = explanation.loss, explanation.loss_after
    why = (
        f"the document's W + α ∇W moves uphill: the loss rises from {before:.6f} to {climbed:.6f}; "
        f"W - α ∇W lowers it to {after:.6f}"
    )
    return ComparisonRow("loss after the update", climbed, after, 6, climbed <= before, why)
