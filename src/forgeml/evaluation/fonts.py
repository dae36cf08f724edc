"""Fonts for text that DejaVu Sans cannot draw (Chinese, Japanese, Korean), in plots and in the card.

matplotlib's bundled DejaVu Sans has no CJK glyphs: a Chinese class name or column name became a
row of boxes and a "Glyph ... missing from font(s) DejaVu Sans" warning. Where a label needs glyphs
DejaVu lacks, :func:`plot_fonts` adds the first font that has them, looked for in this order:

1. the ``noto-cjk-sans-otc`` package (``pip install forgeml[cjk]``; Noto Sans CJK, SIL Open Font
   License 1.1, one 19 MB OpenType collection, so no operating-system package is needed),
2. any font matplotlib finds on the machine (``fonts-noto-cjk`` on Debian, PingFang or
   Microsoft YaHei on a desktop).

With none, the characters no font can draw are replaced by "?" (and logged once), so a plot never
shows boxes or warns. The card's texts are HTML, where the reader's browser picks its own fonts;
:func:`card_font_face` also embeds the CJK characters the card uses, cut from the same font
(fontTools subsetting, WOFF, about 70 kB for 450 characters, a second), so the file renders them on a
machine that has no CJK font at all, and still loads nothing.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger(__name__)
LATIN_FONT = "DejaVu Sans"
CARD_FONT = "forgeml-cjk"
FIRST_WIDE = 0x2E80  # CJK radicals onwards: kana, hangul, ideographs, full-width forms
LAYOUT_TABLES = [
    "GSUB",
    "GPOS",
    "GDEF",
    "BASE",
    "VORG",
    "vhea",
    "vmtx",
    "JSTF",
    "MATH",
]  # horizontal text needs none


def packaged_font() -> Path | None:
    """Noto Sans CJK from the ``noto-cjk-sans-otc`` package, if installed."""
    try:
        import noto_cjk_sans_otc  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(str(noto_cjk_sans_otc.FONT_PATH))
    return path if path.is_file() else None


@functools.cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):  # a broken font file on the machine
        return frozenset()


@functools.cache
def _latin_charmap() -> frozenset[int]:
    from matplotlib import font_manager

    return _charmap(font_manager.findfont(LATIN_FONT))


def _candidates() -> list[tuple[str, str]]:
    """(family, file) of the fonts that may have the glyphs: the packaged one first."""
    from matplotlib import font_manager

    found: list[tuple[str, str]] = []
    packaged = packaged_font()
    if packaged is not None:
        known = {entry.fname for entry in font_manager.fontManager.ttflist}
        if str(packaged) not in known:
            font_manager.fontManager.addfont(str(packaged))
        found += [(e.name, e.fname) for e in font_manager.fontManager.ttflist if e.fname == str(packaged)][:1]
    found += [(e.name, e.fname) for e in font_manager.fontManager.ttflist if e.fname != str(packaged)]
    return found


@functools.cache
def _family_for(missing: frozenset[int]) -> tuple[str | None, frozenset[int]]:
    """The first font family that draws the most of ``missing``, and the code points nothing draws."""
    best: tuple[str | None, frozenset[int]] = (None, missing)
    for family, path in _candidates():
        left = missing - _charmap(path)
        if len(left) < len(best[1]):
            best = (family, left)
        if not left:
            break
    return best


def plot_fonts(texts: Iterable[str]) -> tuple[list[str], Callable[[str], str]]:
    """The font families for a plot showing ``texts``, and a function that makes a label drawable."""
    missing = frozenset(ord(c) for text in texts for c in str(text)) - _latin_charmap()
    missing = frozenset(code for code in missing if code > 0x20)
    if not missing:
        return [LATIN_FONT], str
    family, undrawable = _family_for(missing)
    if undrawable:
        logger.info(
            "No font draws %d characters of the plot labels (e.g. %r); they are shown as '?'. "
            "Install forgeml[cjk] (Noto Sans CJK) or an operating-system CJK font.",
            len(undrawable),
            "".join(chr(code) for code in sorted(undrawable)[:5]),
        )
    families = [LATIN_FONT] + ([family] if family else [])
    return families, lambda label: "".join("?" if ord(c) in undrawable else c for c in str(label))


def card_font_face(html: str) -> str:
    """A CSS ``@font-face`` embedding the wide characters of ``html``, or "" (none, or no font has them)."""
    wide = sorted({code for code in map(ord, html) if code >= FIRST_WIDE})
    path = packaged_font()
    if not wide or path is None:
        return ""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    # Measured on a card with 442 Han characters: 7.4 s with the defaults, 1.1 s without glyph bounds,
    # layout and vertical tables (horizontal text needs none) and with subroutines inlined; 70 kB.
    options = subset.Options(
        flavor="woff",
        layout_features=[],
        hinting=False,
        name_IDs=[1, 2],
        font_number=_simplified_chinese_face(path),
        recalc_bounds=False,
        recalc_timestamp=False,
        desubroutinize=True,
        drop_tables=[*subset.Options._drop_tables_default, *LAYOUT_TABLES],
    )
    font = TTFont(str(path), fontNumber=options.font_number, lazy=True, recalcBBoxes=False)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=wide)
    subsetter.subset(font)
    buffer = io.BytesIO()
    subset.save_font(font, buffer, options)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'@font-face{{font-family:"{CARD_FONT}";src:url(data:font/woff;base64,{data}) format("woff");unicode-range:U+2E80-10FFFF}}'


@functools.cache
def _simplified_chinese_face(path: Path) -> int:
    """The index of "Noto Sans CJK SC" in the collection (Chinese glyph forms), else 0."""
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(path), lazy=True)
    for index, font in enumerate(collection.fonts):
        if font["name"].getDebugName(1) == "Noto Sans CJK SC":
            return index
    return 0
