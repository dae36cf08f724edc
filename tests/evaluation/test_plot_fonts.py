"""Plots with Chinese labels draw them with a CJK font; with no such font they fall back to "?"
without matplotlib's "Glyph ... missing" warnings (issue #23)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from forgeml.evaluation import fonts, plots

LABELS = ["好评", "差评"]


def test_chinese_labels_are_drawn_with_the_packaged_cjk_font() -> None:
    families, drawable = fonts.plot_fonts(LABELS)
    assert families[0] == fonts.LATIN_FONT and "CJK" in families[1]
    assert [drawable(label) for label in LABELS] == LABELS
    assert fonts.plot_fonts(["plain ascii é"])[0] == [fonts.LATIN_FONT]  # DejaVu draws these itself
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph would be a UserWarning
        png = plots.bar_chart(LABELS, [0.3, -0.1], None, "重要性")
    assert png.startswith(b"\x89PNG")


def test_without_a_cjk_font_labels_fall_back_to_question_marks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fonts, "_family_for", lambda missing: (None, missing))
    families, drawable = fonts.plot_fonts([*LABELS, "ok"])
    assert families == [fonts.LATIN_FONT] and drawable("好评 ok") == "?? ok"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.confusion_matrix(np.array([[3, 1], [0, 4]]), LABELS)
    assert png.startswith(b"\x89PNG")


def test_the_card_embeds_only_the_wide_characters_it_shows() -> None:
    assert fonts.card_font_face("<p>plain English, no CJK</p>") == ""
    face = fonts.card_font_face("<p>酒店很好</p>")
    assert face.startswith('@font-face{font-family:"forgeml-cjk"') and "unicode-range:U+2E80-10FFFF" in face
    assert len(face) < 20_000  # four characters, not the 19 MB collection
