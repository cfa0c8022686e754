"""Colour for raster values: named colour-blind-safe colormaps, rescaling, and the legend image.

A colormap is a 256-entry RGBA lookup table built from evenly spaced anchor colours: the
perceptually uniform maps of matplotlib (viridis, cividis, magma, inferno, plasma; sampled at 33
points, within 2 units of the originals, cividis within 6) and ColorBrewer schemes marked
colour-blind safe (ylgnbu, puor, rdylbu). Any name with `_r` appended is the map reversed. Values
are rescaled linearly from `[min, max]` onto the table; values outside are clamped, and pixels
without data get alpha 0.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from tileserver.core.errors import BadRequest

# name -> anchor colours from the low end to the high end, evenly spaced.
ANCHORS = {
    "viridis": (
        "440154 470d60 48186a 482374 472d7b 453781 424086 3e4989 3b528b 375b8d 33638d "
        "2f6b8e 2c728e 297a8e 26828e 23898e 21918c 1f978b 1f9f88 21a685 27ad81 31b57b "
        "3dbc74 4cc26c 5cc863 6ece58 81d34d 95d840 aadc32 c0df25 d5e21a eae51a fde725"
    ),
    "cividis": (
        "00224e 00285b 002e6a 053371 1a386f 273e6e 32436d 3b496c 434e6c 4b546c 535a6d "
        "5a5f6e 61656f 686a71 6f7073 767676 7d7c78 838179 8b8778 928d78 9a9376 a29975 "
        "aaa073 b3a670 bbad6d c3b369 ccba64 d4c15f ddc858 e6d051 efd748 f8df3c fee838"
    ),
    "magma": (
        "000004 030312 0a0822 130d34 1d1147 29115a 36106b 440f76 51127c 5d177f 6a1c81 "
        "762181 832681 902a81 9c2e7f aa337d b73779 c23b75 cf4070 db476a e55064 ee5b5e "
        "f4695c f9785d fb8761 fd9668 fea571 feb47b fec287 fed194 fde0a1 fceeb0 fcfdbf"
    ),
    "inferno": (
        "000004 040312 0b0724 150b37 210c4a 2f0a5b 3d0965 4a0c6b 57106e 64156e 71196e "
        "7d1e6d 8a226a 972766 a32c61 b0315b bc3754 c63d4d d04545 da4e3c e35933 eb6429 "
        "f1711f f67e14 f98c0a fb9b06 fcaa0f fbba1f f9c932 f5d949 f2e865 f3f586 fcffa4"
    ),
    "plasma": (
        "0d0887 220690 310597 3f049c 4c02a1 5901a5 6600a7 7201a8 7e03a8 8a09a5 9511a1 "
        "a01a9c aa2395 b32c8e bc3587 c43e7f cc4778 d24f71 d9586a df6263 e56b5d eb7556 "
        "f07f4f f48948 f89441 fb9f3a fdab33 feb72d fdc328 fcd025 f9dd25 f5eb27 f0f921"
    ),
    "ylgnbu": "ffffd9 edf8b1 c7e9b4 7fcdbb 41b6c4 1d91c0 225ea8 253494 081d58",
    "puor": "7f3b08 b35806 e08214 fdb863 fee0b6 f7f7f7 d8daeb b2abd2 8073ac 542788 2d004b",
    "rdylbu": "a50026 d73027 f46d43 fdae61 fee090 ffffbf e0f3f8 abd9e9 74add1 4575b4 313695",
}
REVERSED = "_r"

# A 3x5 pixel font for the legend's numbers, one string of 15 bits per glyph, rows top to bottom.
GLYPHS = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111", "3": "111001111001111",
    "4": "101101111001001", "5": "111100111001111", "6": "111100111101111", "7": "111001001001001",
    "8": "111101111101111", "9": "111101111001111", ".": "000000000000010", "-": "000000111000000",
    "+": "000010111010000", "e": "010101111100011",
}
GLYPH_SCALE = 2
LEGEND_WIDTH = 256
RAMP_HEIGHT = 16
PAD = 4
TEXT = (51, 51, 51, 255)
BACKGROUND = (255, 255, 255, 255)


def names() -> list[str]:
    """Every colormap name a client may ask for (each also exists reversed, with `_r`).

    >>> names()[:3]
    ['viridis', 'cividis', 'magma']
    """
    return list(ANCHORS)


def is_known(name: str) -> bool:
    """Whether a colormap exists under that name (reversed ones included).

    >>> is_known("viridis_r"), is_known("jet")
    (True, False)
    """
    return name.removesuffix(REVERSED) in ANCHORS


@cache
def lookup_table(name: str) -> np.ndarray:
    """The (256, 4) uint8 RGBA table of a named colormap; a 400 for an unknown name.

    >>> t = lookup_table("viridis")
    >>> t.shape, t[0].tolist(), t[-1].tolist()
    ((256, 4), [68, 1, 84, 255], [253, 231, 37, 255])
    >>> (lookup_table("viridis_r")[0] == t[-1]).all()
    np.True_
    """
    if not is_known(name):
        raise BadRequest(f"unknown colormap {name[:50]!r}; use one of {', '.join(names())} (or add _r)")
    colours = ANCHORS[name.removesuffix(REVERSED)].split()
    anchors = np.array([[int(c[i : i + 2], 16) for i in (0, 2, 4)] for c in colours], dtype=float)
    if name.endswith(REVERSED):
        anchors = anchors[::-1]
    at = np.linspace(0, 255, len(anchors))
    rgb = np.column_stack([np.interp(np.arange(256), at, anchors[:, c]) for c in range(3)])
    table = np.concatenate([np.rint(rgb), np.full((256, 1), 255.0)], axis=1).astype(np.uint8)
    table.setflags(write=False)
    return table


def indices(values: np.ndarray, rescale: tuple[float, float]) -> np.ndarray:
    """Positions in a 256-entry table: `min` maps to 0, `max` to 255, anything beyond is clamped.

    >>> indices(np.array([-1.0, 0.0, 5.0, 10.0, 99.0]), (0.0, 10.0)).tolist()
    [0, 0, 128, 255, 255]
    """
    low, high = rescale
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.rint(np.clip(np.nan_to_num(scaled, nan=0.0), 0, 255)).astype(np.uint8)


def colorize(values: np.ma.MaskedArray, table: np.ndarray, rescale: tuple[float, float]) -> np.ndarray:
    """A (4, height, width) uint8 RGBA image of the values; masked or NaN pixels are transparent.

    >>> image = colorize(np.ma.masked_array([[0.0, 10.0]], mask=[[False, True]]), lookup_table("magma"), (0, 10))
    >>> image[:, 0, 0].tolist(), int(image[3, 0, 1])
    ([0, 0, 4, 255], 0)
    """
    data = np.ma.getdata(values)
    invalid = np.ma.getmaskarray(values) | np.isnan(data)
    rgba = table[indices(data, rescale)]
    rgba[invalid] = 0
    return np.moveaxis(rgba, -1, 0)


def legend(table: np.ndarray, rescale: tuple[float, float]) -> np.ndarray:
    """A legend as a (4, height, width) RGBA image: the colour ramp, then min, middle and max below it."""
    low, high = rescale
    text_height = 5 * GLYPH_SCALE
    height = PAD + RAMP_HEIGHT + PAD + text_height + PAD
    image = np.empty((height, LEGEND_WIDTH + 2 * PAD, 4), dtype=np.uint8)
    image[:] = BACKGROUND
    image[PAD : PAD + RAMP_HEIGHT, PAD : PAD + LEGEND_WIDTH] = table[np.linspace(0, 255, LEGEND_WIDTH).astype(int)]
    top = PAD + RAMP_HEIGHT + PAD
    labels = [label(low), label((low + high) / 2), label(high)]
    widths = [text(t).shape[1] for t in labels]
    lefts = [PAD, PAD + (LEGEND_WIDTH - widths[1]) // 2, PAD + LEGEND_WIDTH - widths[2]]
    for t, left in zip(labels, lefts, strict=True):
        ink = text(t)
        image[top : top + text_height, left : left + ink.shape[1]][ink] = TEXT
    return np.moveaxis(image, -1, 0)


def label(value: float) -> str:
    """A number short enough for a legend, in the characters the legend font has.

    >>> label(0.0), label(12.345), label(-0.5), label(1234567.0), label(0.000123)
    ('0', '12.3', '-0.5', '1.2e+06', '1.2e-04')
    """
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        return f"{value:.1e}"
    return f"{value:.3g}"


def text(chars: str) -> np.ndarray:
    """A boolean ink mask of a string in the legend font (one blank column between glyphs).

    >>> text("1").astype(int)[::2, ::2].tolist()
    [[0, 1, 0], [1, 1, 0], [0, 1, 0], [0, 1, 0], [1, 1, 1]]
    """
    columns = []
    for i, char in enumerate(chars):
        if i:
            columns.append(np.zeros((5, 1), dtype=bool))
        columns.append(np.array([bit == "1" for bit in GLYPHS[char]], dtype=bool).reshape(5, 3))
    ink = np.concatenate(columns, axis=1) if columns else np.zeros((5, 0), dtype=bool)
    return np.kron(ink, np.ones((GLYPH_SCALE, GLYPH_SCALE), dtype=bool))
