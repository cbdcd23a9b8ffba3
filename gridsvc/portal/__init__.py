"""Read services behind the web pages and API: search, details, roster, GeoJSON, map data."""
