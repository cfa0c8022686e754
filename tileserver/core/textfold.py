"""CQL2 `CASEI` and `ACCENTI` as explicit character maps, so both stores fold text exactly alike.

PostgreSQL's `lower()` follows the database's locale (ASCII only under `C`) and `unaccent()` is a
contrib extension that may not be installed; SQLite has neither. One pair of maps, applied by
PostgreSQL's `translate()` and by Python's `str.translate` (SQLite's `ecarto_casei`/`ecarto_accenti`
and literals), gives the same answer everywhere for the Latin, Greek and Cyrillic alphabets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
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


# The folds both stores keep precomputed beside each searchable property (`dataset.stored_column`),
# by the names of the folds in the order they apply: a folded comparison then reads a column.
STORED_FOLDS: dict[tuple[str, ...], Callable[[str], str]] = {
    ("casei",): casei,
    ("accenti",): accenti,
    ("casei", "accenti"): lambda text: accenti(casei(text)),
}

# Letters folded into two: French writers and typists spell them either way ("cœur", "coeur").
_LIGATURES = {"œ": "oe", "æ": "ae", "ĳ": "ij"}
# What a search key reads: Basic Latin to Cyrillic, and General Punctuation (dashes, curly quotes...).
_SEARCH_DOMAIN = (*range(0x20, 0x530), *range(0x2000, 0x2070))


def _representative(c: str) -> str:
    """The character standing for every character that CASEI and ACCENTI fold together with `c`.

    Folding case then accents is not always folding accents then case ('İ'), so apply both until
    nothing changes: the result is the same for `c`, `casei(c)` and `accenti(c)`.
    """
    while (next_c := casei(accenti(casei(c)))) != c:
        c = next_c
    return c


def _search_table() -> dict[int, str]:
    """The character map of `search_key`: letters folded, ligatures split, marks dropped, the rest a space."""
    table = {}
    for c in map(chr, _SEARCH_DOMAIN):
        folded = _representative(c)
        folded = _LIGATURES.get(folded, folded)
        if unicodedata.combining(c):
            folded = ""
        elif not folded.isalnum():
            folded = " "
        if folded != c:
            table[ord(c)] = folded
    return table


_SEARCH = _search_table()


def search_key(text: str) -> str:
    """What text search and the index of folded names compare: no case, accent, punctuation or extra space.

    Any text and its CASEI, ACCENTI or both have the same key, so comparing keys finds at least every
    row a folded comparison finds (an index on keys can narrow it down; the comparison then decides).

    >>> search_key("  Lycée Saint-ÉTIENNE  l’Œuvre ")
    'lycee saint etienne l oeuvre'
    """
    return " ".join(text.translate(_SEARCH).split())
