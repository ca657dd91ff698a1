"""Fonts that draw the tokens: Chinese, Japanese, Korean, emoji …

Matplotlib (≥ 3.6) falls back through a *list* of font families glyph by glyph. The
list here is the user's ``--font`` (if any), DejaVu Sans, then the fewest installed fonts
that cover the characters DejaVu Sans lacks, chosen in a fixed order (same input, same
font, same bytes). Characters no installed font has are reported once, with the Debian
package that provides them, instead of one matplotlib warning per glyph and figure.
"""

from __future__ import annotations

import unicodedata
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional

from attncli.errors import AttnError

BASE = "DejaVu Sans"  # matplotlib's own font: always there

# (first, last code point, Debian package): what to install for characters no font has
PACKAGES = (
    (0x1100, 0x11FF, "fonts-noto-cjk"),  # Hangul jamo
    (0x2E80, 0x9FFF, "fonts-noto-cjk"),  # CJK radicals, kana, Han
    (0xAC00, 0xD7AF, "fonts-noto-cjk"),  # Hangul syllables
    (0xF900, 0xFAFF, "fonts-noto-cjk"),
    (0xFF00, 0xFFEF, "fonts-noto-cjk"),  # full-width forms
    (0x20000, 0x3FFFF, "fonts-noto-cjk"),
    (0x2600, 0x27BF, "fonts-symbola"),  # symbols and dingbats (❤)
    (0x1F000, 0x1FAFF, "fonts-symbola"),  # emoji (matplotlib cannot draw colour-emoji fonts)
)
OTHER = "fonts-noto-core"

_CHARMAPS: dict[str, frozenset[int]] = {}


def drawable(ch: str) -> bool:
    """A character that needs a glyph (not a joiner, variation selector or space)."""
    return not ch.isspace() and unicodedata.category(ch) not in ("Mn", "Me", "Cf", "Cc")


def _charmap(path: str) -> frozenset[int]:
    if path not in _CHARMAPS:
        from matplotlib.ft2font import FT2Font

        try:
            font = FT2Font(path)
            _CHARMAPS[path] = frozenset(font.get_charmap()) if font.scalable else frozenset()
        except Exception:  # an unreadable font file is a font we cannot use
            _CHARMAPS[path] = frozenset()
    return _CHARMAPS[path]


def _candidates(rescan: bool = False) -> list[tuple[str, str]]:
    """(family, file) of every installed regular-weight font, sans-serif first, in a
    fixed order."""
    from matplotlib import font_manager

    fresh = font_manager._load_fontmanager(try_read_cache=False) if rescan else None  # type: ignore[attr-defined]
    manager = fresh or font_manager.fontManager
    if rescan:
        font_manager.fontManager = manager
    fonts = {
        (f.name, f.fname)
        for f in manager.ttflist
        if f.style == "normal" and f.weight in (400, "normal") and "Last Resort" not in f.name  # boxes for all
    }
    return sorted(fonts, key=lambda nf: ("Sans" not in nf[0], "Mono" in nf[0], nf[0], nf[1]))


def _path_of(family: str) -> Optional[str]:
    from matplotlib import font_manager

    try:
        return font_manager.findfont(family, fallback_to_default=False)
    except ValueError:
        return None


@dataclass(frozen=True)
class FontChoice:
    families: tuple[str, ...]  # for rcParams["font.family"]
    missing: tuple[str, ...]  # characters no installed font draws

    def warning(self) -> Optional[str]:
        """One line naming what cannot be drawn and what would draw it."""
        if not self.missing:
            return None
        packages = sorted({package(ch) for ch in self.missing})
        chars = " ".join(self.missing[:12]) + (" …" if len(self.missing) > 12 else "")
        return (
            f"no installed font draws {chars} (they show as empty boxes): install "
            + " or ".join(packages)
            + " (e.g. sudo apt-get install "
            + " ".join(packages)
            + ") or pass --font NAME"
        )


def package(ch: str) -> str:
    cp = ord(ch)
    return next((p for lo, hi, p in PACKAGES if lo <= cp <= hi), OTHER)


def choose(texts: Iterable[str], font: Optional[str] = None) -> FontChoice:
    """The font list for figures showing ``texts``: ``font`` first (when given),
    DejaVu Sans, then fonts covering what those two lack."""
    first = [font] if font else []
    if font and _path_of(font) is None:
        raise AttnError(f"--font: no installed font is called {font!r} (fc-list lists them)", setting="font")
    families = [*first, BASE]
    need = sorted({ch for t in texts for ch in t if drawable(ch)})
    covered: set[int] = set()
    for family in families:
        path = _path_of(family)
        covered |= _charmap(path) if path else frozenset()
    missing = [ch for ch in need if ord(ch) not in covered]
    if not missing:
        return FontChoice(tuple(families), ())
    missing = _fill(families, missing, _candidates())
    if missing:  # fonts installed after matplotlib built its cache: look once more
        missing = _fill(families, missing, _candidates(rescan=True))
    return FontChoice(tuple(families), tuple(missing))


def _fill(families: list[str], missing: list[str], candidates: list[tuple[str, str]]) -> list[str]:
    """Add candidate families (in order) that draw some of ``missing``; what is left."""
    for name, path in candidates:
        if not missing:
            break
        charmap = _charmap(path)
        if any(ord(ch) in charmap for ch in missing):
            if name not in families:
                families.append(name)
            missing = [ch for ch in missing if ord(ch) not in charmap]
    return missing


@contextmanager
def quiet_glyphs() -> Iterator[None]:
    """No matplotlib warning per missing glyph: :meth:`FontChoice.warning` says it once."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from")
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        yield
