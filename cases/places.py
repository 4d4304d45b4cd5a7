"""Where a case is: a point in WGS-84 (what GPS, GeoJSON and the office's GIS use).

Chinese maps (AMap/高德, Tencent, Google in China) show GCJ-02, WGS-84 shifted by a
published non-linear offset of a few hundred metres; a point picked on such a map is
converted here before it is stored. The forward formula is the standard one
(GCJ-02 is defined by it); the inverse has no closed form and is found by iteration,
to well under a centimetre. Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

# The Krasovsky 1940 ellipsoid the GCJ-02 formula is written on.
_A = 6378245.0
_EE = 0.00669342162296594323
# Stored to 7 decimals: about a centimetre, far finer than any phone's fix.
DECIMALS = 7


class CoordinateSystem(StrEnum):
    WGS84 = "wgs84"  # GPS, GeoJSON, Open311
    GCJ02 = "gcj02"  # 国测局坐标: AMap/高德, Tencent, Google China


def _outside_china(lat: float, lon: float) -> bool:
    """GCJ-02 applies only in China; outside, the formula leaves points as they are."""
    return not (73.66 < lon < 135.05 and 3.86 < lat < 53.55)


def _offset(lat: float, lon: float) -> tuple[float, float]:
    """GCJ-02 minus WGS-84 at a WGS-84 point, in degrees (latitude, longitude)."""
    x, y = lon - 105.0, lat - 35.0
    common = 20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)
    d_lat = common + 20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)
    d_lon = common + 20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)
    d_lat += 160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)
    d_lon += 150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)
    d_lat = d_lat * 2.0 / 3.0 - 100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    d_lon = d_lon * 2.0 / 3.0 + 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    rad = lat / 180.0 * math.pi
    magic = 1.0 - _EE * math.sin(rad) ** 2
    root = math.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * root) * math.pi)
    d_lon = (d_lon * 180.0) / (_A / root * math.cos(rad) * math.pi)
    return d_lat, d_lon


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if _outside_china(lat, lon):
        return lat, lon
    d_lat, d_lon = _offset(lat, lon)
    return lat + d_lat, lon + d_lon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """The WGS-84 point whose GCJ-02 image is (lat, lon): fixed-point iteration on the
    forward formula (the offset changes slowly, so each step gains several digits)."""
    if _outside_china(lat, lon):
        return lat, lon
    w_lat, w_lon = lat, lon
    for _ in range(30):
        g_lat, g_lon = wgs84_to_gcj02(w_lat, w_lon)
        e_lat, e_lon = lat - g_lat, lon - g_lon
        w_lat, w_lon = w_lat + e_lat, w_lon + e_lon
        if abs(e_lat) < 1e-10 and abs(e_lon) < 1e-10:  # about 0.01 mm
            break
    return w_lat, w_lon


def to_wgs84(lat: float, lon: float, system: CoordinateSystem) -> tuple[float, float]:
    """The point as stored: WGS-84, rounded to `DECIMALS`."""
    if system == CoordinateSystem.GCJ02:
        lat, lon = gcj02_to_wgs84(lat, lon)
    return round(lat, DECIMALS), round(lon, DECIMALS)


def metres_between(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon) points (haversine, mean Earth radius)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371008.8 * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Bounds:
    """A box in GeoJSON's bbox order: west, south, east, north (longitudes, latitudes)."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon

    def describe(self) -> str:
        return f"经度 {self.min_lon}～{self.max_lon}，纬度 {self.min_lat}～{self.max_lat}"

    def as_list(self) -> list[float]:
        return [self.min_lon, self.min_lat, self.max_lon, self.max_lat]


Ring = Sequence[tuple[float, float]]  # (lon, lat) vertices, as GeoJSON orders them
Area = Sequence[Ring]  # rings of one or more polygons; holes are rings inside others


def inside(area: Area, lat: float, lon: float) -> bool:
    """Even-odd rule over every ring: inside an outer ring and not in one of its holes."""
    crossings = 0
    for ring in area:
        n = len(ring)
        for i in range(n):
            (x1, y1), (x2, y2) = ring[i], ring[(i + 1) % n]
            if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                crossings += 1
    return crossings % 2 == 1
