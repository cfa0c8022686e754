"""Territory and school codes in one spelling, so that joins work across datasets.

Each source writes codes its own way: the school directory pads départements to three characters
(`094`, `02A`), the synthetic export drops the leading zero of académies (`7`), spreadsheets strip
the zero of communes (`1001`). Every function here takes what a source wrote and returns the
spelling of the INSEE Code officiel géographique (the one the boundaries use), or `None` when the
value is empty or cannot be a code of that kind.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"\d{1,3}")
_CORSICA = re.compile(r"2([AB])")
_COMMUNE = re.compile(r"(\d{4,5}|0?2[AB]\d{3})")
_UAI = re.compile(r"\d{7}[A-Z]")
UAI_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"  # the check letter is UAI_LETTERS[seven digits mod 23]


def _clean(code: str | None) -> str:
    text = code.strip().upper() if code else ""
    return text if text.isascii() else ""


def departement(code: str | None) -> str | None:
    """A département code as in the COG: two characters, three overseas.

    >>> departement('094'), departement('1'), departement('02A'), departement('2b')
    ('94', '01', '2A', '2B')
    >>> departement('971'), departement('0974'), departement('988')
    ('971', '974', '988')
    >>> departement(''), departement(None), departement('000'), departement('123'), departement('9A')
    (None, None, None, None, None)
    """
    text = _clean(code).lstrip("0").rjust(2, "0")
    corsica = _CORSICA.fullmatch(text)
    if corsica:
        return "2" + corsica.group(1)
    if not _DIGITS.fullmatch(text):
        return None
    number = int(text)
    if 1 <= number <= 95:
        return f"{number:02d}"
    return text if 971 <= number <= 989 else None


def academie(code: str | None) -> str | None:
    """An académie code on two digits (`07` Dijon, `70` Normandie, `43` Mayotte).

    >>> academie('7'), academie('07'), academie('10'), academie(' 43 ')
    ('07', '07', '10', '43')
    >>> academie(''), academie('0'), academie('A1'), academie('123')
    (None, None, None, None)
    """
    return _two_digits(code)


def region(code: str | None) -> str | None:
    """A région code on two digits; overseas collectivities keep their three digits, as in the COG.

    `00`, which the geolocation files give the collectivities, is no région.

    >>> region('1'), region('01'), region('84'), region('975'), region('00'), region('x'), region(None)
    ('01', '01', '84', '975', None, None, None)
    """
    text = _clean(code)
    if len(text) == 3 and text.isdigit() and 975 <= int(text) <= 989:
        return text
    return _two_digits(text)


def _two_digits(code: str | None) -> str | None:
    text = _clean(code)
    if not (text.isdigit() and len(text) <= 2) or int(text) == 0:
        return None
    return text.rjust(2, "0")


def commune(code: str | None) -> str | None:
    """A commune code on five characters (`01001`, `2A004`, `97105`).

    >>> commune('1001'), commune('01001'), commune('2A004'), commune('2a004'), commune('97105')
    ('01001', '01001', '2A004', '2A004', '97105')
    >>> commune(''), commune('123'), commune('00000'), commune('2C004'), commune('abcde')
    (None, None, None, None, None)
    """
    text = _clean(code)
    if not _COMMUNE.fullmatch(text) or text.strip("0") == "":
        return None
    return text[-5:].rjust(5, "0")


def departement_of_commune(code: str | None) -> str | None:
    """The département a commune belongs to: the first two characters, three overseas.

    True of every current commune; five communes associées attached across a border (02285
    Escaufourt, part of a commune of the Nord) keep the code of their former département.

    >>> departement_of_commune('97105'), departement_of_commune('2A004'), departement_of_commune('94034')
    ('971', '2A', '94')
    >>> departement_of_commune('1001'), departement_of_commune(''), departement_of_commune('98735')
    ('01', None, '987')
    """
    normal = commune(code)
    if normal is None:
        return None
    return departement(normal[:3] if normal.startswith(("97", "98")) else normal[:2])


def uai(code: str | None) -> str | None:
    """A school identifier (UAI) in capitals if its check letter is right, else None.

    The letter is `UAI_LETTERS[int(seven digits) % 23]`, which catches a mistyped digit.

    >>> uai('0350122T'), uai(' 0350122t ')
    ('0350122T', '0350122T')
    >>> uai('0350122A'), uai('350122T'), uai(''), uai('03501221')
    (None, None, None, None)
    """
    text = _clean(code)
    if not _UAI.fullmatch(text):
        return None
    return text if UAI_LETTERS[int(text[:7]) % 23] == text[7] else None
