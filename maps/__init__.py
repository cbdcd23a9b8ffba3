"""Folium coverage maps and offline HTML reports: plain data in, a map or one HTML file out."""
