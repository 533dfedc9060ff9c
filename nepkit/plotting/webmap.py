"""An interactive, offline map of the mines (Leaflet, inlined; no tiles, no CDN).

The base map is the shipped Natural Earth country polygons as GeoJSON; each mine is a
circle marker at its representative point, in two switchable layers coloured by NEP
loss and by restoration potential, with a popup per mine. Leaflet 1.9.4 (BSD-2) is
vendored in ``nepkit/vendor/leaflet`` and inlined, so the page needs no network.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import Normalize, TwoSlopeNorm, to_hex

from nepkit import regions

__all__ = ["mine_map_html", "mine_map_iframe"]

_TEMPLATE = """<!DOCTYPE html>
<html><head><meta charset="utf-8">
<style>{css}
html,body,#map{{height:100%;margin:0;background:#dbe9f4}}
.legend{{background:#fff;padding:6px 8px;font:12px sans-serif;border-radius:4px;line-height:1.5}}
.legend i{{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:4px}}
</style>
<script>{js}</script></head>
<body><div id="map" data-markers="0"></div>
<script>
const COUNTRIES = {countries};
const MINES = {mines};
const LAYERS = {layers};
const map = L.map('map', {{preferCanvas: true, worldCopyJump: false}});
L.geoJSON(COUNTRIES, {{style: f => ({{color: '#8c8c8c', weight: 0.5,
  fillColor: f.properties.bri ? '#f1ead8' : '#e6e6e6', fillOpacity: 1}})}}).addTo(map);
const overlays = {{}};
let count = 0;
LAYERS.forEach((layer, k) => {{
  const group = L.layerGroup();
  MINES.forEach(m => {{
    const marker = L.circleMarker([m[0], m[1]], {{radius: m[2], color: m[4][k], weight: 0,
      fillColor: m[4][k], fillOpacity: 0.8}});
    marker.bindPopup(m[3]);
    group.addLayer(marker);
  }});
  overlays[layer.label] = group;
  if (k === 0) {{ group.addTo(map); }}
  count += group.getLayers().length;
}});
L.control.layers(overlays, null, {{collapsed: false}}).addTo(map);
const legend = L.control({{position: 'bottomleft'}});
legend.onAdd = () => {{ const d = L.DomUtil.create('div', 'legend');
  d.innerHTML = LAYERS.map(l => '<b>' + l.label + '</b><br>' + l.legend).join('<br>'); return d; }};
legend.addTo(map);
map.fitBounds({bounds});
document.getElementById('map').dataset.markers = String(count);
</script></body></html>
"""


def _colours(values: np.ndarray, cmap: str, diverging: bool) -> tuple[list[str], str]:
    finite = values[np.isfinite(values)]
    hi = float(np.nanpercentile(np.abs(finite), 98)) if finite.size else 1.0
    hi = hi or 1.0
    norm = TwoSlopeNorm(0.0, -hi, hi) if diverging else Normalize(0.0, hi)
    cm = colormaps[cmap]
    cols = [to_hex(cm(norm(np.clip(v, -hi, hi)))) if np.isfinite(v) else "#999999" for v in values]
    if diverging:
        legend = f"<i style='background:{to_hex(cm(0.0))}'></i>gain {hi:.0f}+ <i style='background:{to_hex(cm(1.0))}'></i>loss {hi:.0f}+"
    else:
        legend = f"<i style='background:{to_hex(cm(0.0))}'></i>0 <i style='background:{to_hex(cm(1.0))}'></i>{hi:.0f}+"
    return cols, legend + " g C m<sup>-2</sup> a<sup>-1</sup>"


def mine_map_html(mines: gpd.GeoDataFrame, values: pd.DataFrame) -> str:
    """A self-contained HTML page with the interactive mine map.

    Parameters
    ----------
    mines : geopandas.GeoDataFrame
        ``mine_id, iso3, country, area_km2, geometry`` (EPSG:4326).
    values : pandas.DataFrame
        ``mine_id`` and at least one of ``loss_stat`` (g C m-2 a-1, positive = loss)
        and ``potential`` (g C m-2 a-1); each becomes a switchable layer.

    Returns
    -------
    str
        HTML with Leaflet inlined; the map ``div`` carries ``data-markers`` (the
        number of markers drawn) once rendered.
    """
    table = mines.merge(values, on="mine_id", how="left")
    pts = table.geometry.representative_point()
    specs = [
        ("loss_stat", "NEP loss (red) / gain (blue)", "RdBu_r", True),
        ("potential", "Restoration potential", "viridis", False),
    ]
    layers, colours = [], []
    for column, label, cmap, diverging in specs:
        if column in table:
            cols, legend = _colours(table[column].to_numpy(float), cmap, diverging)
            layers.append({"label": label, "legend": legend})
            colours.append(cols)
    if not layers:
        raise ValueError("values needs a loss_stat or potential column to colour the mines by")
    radius = np.clip(2 + 2 * np.sqrt(table["area_km2"].to_numpy(float)), 2, 12)
    records = []
    for i, row in enumerate(table.itertuples(index=False)):
        popup = (
            f"<b>mine {row.mine_id}</b><br>{html.escape(str(row.country))} ({row.iso3})<br>"
            f"area {row.area_km2:.2f} km<sup>2</sup>"
            + "".join(
                f"<br>{c}: {getattr(row, c):.1f} g C m<sup>-2</sup> a<sup>-1</sup>"
                for c in ("loss_stat", "potential")
                if c in table and np.isfinite(getattr(row, c))
            )
        )
        records.append([round(pts.y.iloc[i], 4), round(pts.x.iloc[i], 4), round(float(radius[i]), 1), popup, [c[i] for c in colours]])
    world = regions.boundaries()[["iso3", "bri", "geometry"]]
    x0, y0, x1, y1 = mines.total_bounds if len(mines) else (-20, -40, 150, 60)
    vendor = files("nepkit") / "vendor" / "leaflet"
    return _TEMPLATE.format(
        css=(vendor / "leaflet.css").read_text(encoding="utf-8"),
        js=(vendor / "leaflet.js").read_text(encoding="utf-8"),
        countries=world.to_json(drop_id=True),
        mines=json.dumps(records),
        layers=json.dumps(layers),
        bounds=json.dumps([[y0 - 1, x0 - 1], [y1 + 1, x1 + 1]]),
    )


def mine_map_iframe(mines: gpd.GeoDataFrame, values: pd.DataFrame, *, height_px: int = 540) -> str:
    """:func:`mine_map_html` wrapped in an ``<iframe srcdoc>``, for notebook output.

    An iframe keeps Leaflet's CSS and scripts apart from the book's page and runs in
    JupyterLab as in the HTML book. It sits in a ``div``: IPython's ``HTML`` warns
    about markup that starts with a bare iframe.
    """
    page = html.escape(mine_map_html(mines, values), quote=True)
    return (
        f'<div class="nepkit-mine-map-frame"><iframe class="nepkit-mine-map" srcdoc="{page}" '
        f'style="width:100%;height:{height_px}px;border:1px solid #ccc" loading="eager"></iframe></div>'
    )
