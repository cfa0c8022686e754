"""Cut the repository's sample (sources/sample/) out of ../shared/data: one département, real data only.

Run once by a maintainer who has the national extracts; everyone else uses the committed result:
    .venv/bin/python scripts/make_sample.py [--data ../shared/data] [--departement 35]  (or ECARTO_DATA)
Every file is the published one filtered to the département (its région and académie for their
outlines), row for row and coordinate for coordinate, then gzipped: the outlines were generalised by
their publishers already, and simplifying neighbours one by one would open gaps between them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "sources" / "sample"


def main() -> None:
    """Write every sample file from the national extracts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("ECARTO_DATA", "../shared/data")))
    parser.add_argument("--departement", default="35")
    args = parser.parse_args()
    data, dept = args.data, args.departement
    OUT.mkdir(parents=True, exist_ok=True)
    uais = _schools(data, dept)
    _ips(data, uais)
    communes = json.loads((data / "decoupage-administratif-2026/communes.json").read_text(encoding="utf-8"))
    ours = [c for c in communes if c.get("departement") == dept]
    _write_json("communes-cog-2026.json.gz", ours)
    codes = {c["code"] for c in ours}
    epci = json.loads((data / "decoupage-administratif-2026/epci.json").read_text(encoding="utf-8"))
    _write_json("epci-2026.json.gz", [e for e in epci if any(m["code"] in codes for m in e["membres"])])
    _outlines(data / "boundaries-2018/communes-avec-outre-mer.geojson.gz", "communes-2018.geojson.gz",
              lambda p: p["departement"] == dept)
    _outlines(data / "boundaries-2018/departements-avec-outre-mer.geojson", "departement-2018.geojson.gz",
              lambda p: p["code"] == dept)
    region = next(c["region"] for c in ours)
    _outlines(data / "boundaries-2018/regions-avec-outre-mer.geojson", "region-2018.geojson.gz",
              lambda p: p["code"] == region)
    _outlines(data / "academies/fr-en-contour-academies-2020.geojson", "academie-2020.geojson.gz",
              lambda p: p["code_region_2016"] == region)


def _schools(data: Path, dept: str) -> set[str]:
    """The département's directory extract, byte for byte (gzipped); returns its UAIs."""
    source = next((data / "annuaire-education-samples").glob(f"annuaire-education-{dept}-*.csv"))
    raw = source.read_bytes()
    _write_bytes("annuaire-education.csv.gz", raw)
    rows = csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";")
    return {row["Identifiant_de_l_etablissement"] for row in rows}


def _ips(data: Path, uais: set[str]) -> None:
    """The IPS rows of the sample's collèges, header and layout as published."""
    lines = (data / "indicateurs-samples/ips-colleges-2023.csv").read_text(encoding="utf-8-sig").splitlines()
    kept = [lines[0], *(line for line in lines[1:] if line.split(";")[1] in uais)]
    (OUT / "ips-colleges-2023.csv").write_text("\n".join(kept) + "\n", encoding="utf-8")


def _outlines(path: Path, name: str, keep: Any) -> None:
    """The features `keep` selects, as published."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        features = [f for f in json.load(handle)["features"] if keep(f["properties"])]
    _write_json(name, {"type": "FeatureCollection", "features": features})


def _write_json(name: str, value: Any) -> None:
    _write_bytes(name, json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _write_bytes(name: str, raw: bytes) -> None:
    """Gzip with a fixed mtime, so a rerun on the same data gives the same bytes (and the same stamp)."""
    (OUT / name).write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))


if __name__ == "__main__":
    main()
