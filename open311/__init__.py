"""Open311 GeoReport v2: the standard civic-issue API, mapped onto cases."""
