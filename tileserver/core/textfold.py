"""CQL2 `CASEI` and `ACCENTI` as explicit character maps, so both stores fold text exactly alike.

PostgreSQL's `lower()` follows the database's locale (ASCII only under `C`) and `unaccent()` is a
contrib extension that may not be installed; SQLite has neither. One pair of maps, applied by
PostgreSQL's `translate()` and by Python's `str.translate` (SQLite's `ecarto_casei`/`ecarto_accenti`
and literals), gives the same answer everywhere for the Latin, Greek and Cyrillic alphabets.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Fold:
    """One folding: the characters it replaces and, at the same positions, their replacements."""

    name: str
    source: str
    target: str
    table: dict[int, int]

    def apply(self, text: str) -> str:
        """The text folded, as the database folds a column."""
        return text.translate(self.table)


def _case_pairs() -> list[tuple[str, str]]:
    """Every upper-case letter of Basic Latin to Cyrillic with a one-letter lower case."""
    letters = (chr(c) for c in range(0x41, 0x530))
    return [(c, c.lower()) for c in letters if c.isupper() and len(c.lower()) == 1 and c.lower() != c]


def _accent_pairs() -> list[tuple[str, str]]:
    """Every letter of Basic Latin to Cyrillic that is a base letter with marks, and that base letter."""
    pairs = []
    for c in map(chr, range(0xC0, 0x530)):
        base = "".join(m for m in unicodedata.normalize("NFD", c) if not unicodedata.combining(m))
        if len(base) == 1 and base != c:
            pairs.append((c, base))
    return pairs


def _fold(name: str, pairs: list[tuple[str, str]]) -> Fold:
    source, target = "".join(p[0] for p in pairs), "".join(p[1] for p in pairs)
    return Fold(name, source, target, str.maketrans(source, target))


CASEI = _fold("casei", _case_pairs())
ACCENTI = _fold("accenti", _accent_pairs())


def casei(text: str) -> str:
    """Text in lower case.

    >>> casei("École Saint-ÉTIENNE")
    'école saint-étienne'
    """
    return CASEI.apply(text)


def accenti(text: str) -> str:
    """Text without its accents (cedillas, diaereses... alike), case kept.

    >>> accenti("Lycée Français d'Orléans, Noël")
    "Lycee Francais d'Orleans, Noel"
    """
    return ACCENTI.apply(text)
