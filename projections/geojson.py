"""The ledger as GeoJSON (RFC 7946) for the office's own GIS: one Point feature per
located case, WGS-84 (GeoJSON's only datum), with the ledger's exported columns as
properties (the petitioner masked, as in every export) and the Chinese names of codes.
Cases without a point are counted, not drawn."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from projections.exports import code_names
from reference.model import ReferenceData

MEDIA_TYPE = "application/geo+json"
NAMED = ("channel", "category", "status", "handling_type", "tier", "lead_department", "rating")


def feature_collection(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], reference: ReferenceData
) -> dict[str, Any]:
    names = code_names(reference)
    features: list[dict[str, Any]] = []
    unlocated = 0
    for row in rows:
        lat, lon = row.get("latitude"), row.get("longitude")
        if lat is None or lon is None:
            unlocated += 1
            continue
        properties = {c: row.get(c) for c in columns if c not in ("latitude", "longitude")}
        properties |= {f"{c}_name": names[c].get(v, v) for c in NAMED if isinstance(v := row.get(c), str)}
        features.append(
            {
                "type": "Feature",
                "id": row["case_id"],
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": properties,
            }
        )
    collection: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if features:
        lons = [f["geometry"]["coordinates"][0] for f in features]
        lats = [f["geometry"]["coordinates"][1] for f in features]
        collection["bbox"] = [min(lons), min(lats), max(lons), max(lats)]
    collection["unlocated"] = unlocated  # a foreign member: matching cases that have no point
    return collection


def encode(collection: dict[str, Any]) -> bytes:
    return orjson.dumps(collection)
