"""What sheets compare, computed once at ingest: France, and each territory of the coarse levels.

France goes into each catalogue entry (`entry["france"]`), beside the class limits of each level
(`entry["breaks_by_level"]`); régions, académies, départements and EPCI go into the version's
`summaries`, so their sheets read no school at request time (a région holds up to 11,000). Communes,
35,000 of them with a few schools each, are summarised when their sheet is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ingest.classes import breaks_by_level
from tileserver.core.dataset import SCHOOLS, Layer
from tileserver.core.summary import LEVEL_CODES, school_entries, summarise, summarise_territories

SUMMARISED_LEVELS = ("regions", "academies", "departements", "epci")


def published_catalogue(catalogue: Sequence[Mapping], layers: Mapping[str, Layer]) -> list[dict]:
    """The catalogue as published: each entry with its limits per level and, for school indicators, France."""
    schools = layers.get(SCHOOLS)
    out = []
    for raw in catalogue:
        entry = {**raw, "breaks_by_level": breaks_by_level(raw, layers)}
        if schools is not None and school_entries([entry], list(schools.columns)):
            entry["france"] = summarise(schools.columns["type"], schools.columns[entry["id"]], entry).to_dict()
        out.append(entry)
    return out


def territory_summaries(catalogue: Sequence[Mapping], layers: Mapping[str, Layer]) -> dict[str, dict[str, dict]]:
    """Level -> territory code -> its summary (`TerritorySummary.to_dict`) and `nom`, for `SUMMARISED_LEVELS`."""
    schools = layers.get(SCHOOLS)
    if schools is None:
        return {}
    entries = school_entries(catalogue, list(schools.columns))
    out: dict[str, dict[str, dict]] = {}
    for level in SUMMARISED_LEVELS:
        layer = layers.get(level)
        if layer is None or LEVEL_CODES[level] not in schools.columns:
            continue
        order = {code: i for i, code in enumerate(layer.ids)}
        groups = np.array([order.get(c, -1) if c else -1 for c in schools.columns[LEVEL_CODES[level]]], dtype=np.int64)
        found = summarise_territories(groups, len(order), schools.columns, entries, level)
        names = layer.columns.get("nom") or [None] * len(layer.ids)
        out[level] = {code: {**summary.to_dict(), "nom": name}
                      for code, name, summary in zip(layer.ids, names, found, strict=True)}
    return out
