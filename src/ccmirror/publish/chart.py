"""The coverage chart's geometry: numbers only; the SVG markup is in the templates.

Two shapes of one chart: a wide one for a desktop and a narrow one for a phone, whose
text stays legible when the SVG is scaled to a 390 px screen (CSS shows one of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ccmirror.sizes import format_size

TIER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Shape:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    font: int  # user units; the rendered size is font * screen width / width
    ticks: int  # x-axis labels
    band_label: int  # a band narrower than this shows the tier number alone


WIDE = Shape(1000, 380, 64, 24, 20, 46, 12, 5, 52)
NARROW = Shape(360, 300, 60, 14, 12, 46, 13, 3, 50)


def chart(
    curve: list[tuple[int, float]],
    tiers: list[dict[str, Any]],
    shape: Shape,
    originals: list[tuple[int, float]] | None = None,
) -> dict:
    """Everything the template draws: grid lines, axis labels, tier bands, the curve (and,
    with compact tiers, the curve of the same ranking kept as originals: the gain)."""
    s = shape
    pw, ph = s.width - s.left - s.right, s.height - s.top - s.bottom
    max_x = max((p[0] for p in curve + (originals or [])), default=0) or 1

    def x(v: float) -> float:
        return round(s.left + pw * v / max_x, 1)

    def y(v: float) -> float:
        return round(s.top + ph * (1 - v), 1)

    grid = [{"y": y(i / 4), "label": f"{i * 25}%"} for i in range(5)]
    xticks = []
    for i in range(s.ticks):
        v = i / (s.ticks - 1)
        anchor = "end" if i == s.ticks - 1 else "start" if i == 0 else "middle"
        xticks.append({"x": x(max_x * v), "label": format_size(int(max_x * v)), "anchor": anchor})
    bands = []
    prev = 0
    for n, t in enumerate(t for t in tiers if t.get("cumulative_bytes") is not None):
        end = t["cumulative_bytes"]
        width = round(max(x(end) - x(prev), 0), 1)
        bands.append(
            {
                "x": x(prev),
                "end": x(end),
                "width": width,
                "colour": TIER_COLOURS[n % len(TIER_COLOURS)],
                "label": (f"tier {t['tier']}" if width > s.band_label else str(t["tier"]))
                if width > 10
                else "",
                "mid": round(x(prev) + width / 2, 1),
            }
        )
        prev = end
    return {
        "shape": s,
        "plot_right": s.width - s.right,
        "plot_bottom": s.top + ph,
        "plot_mid_x": round(s.left + pw / 2, 1),
        "plot_mid_y": round(s.top + ph / 2, 1),
        "grid": grid,
        "xticks": xticks,
        "bands": bands,
        "points": " ".join(f"{x(a)},{y(b)}" for a, b in curve),
        "points_originals": " ".join(f"{x(a)},{y(b)}" for a, b in originals or []),
    }


def legend(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Below the chart, in words: what keeping tiers 1..k costs and covers."""
    out = []
    for n, t in enumerate(t for t in tiers if t.get("cumulative_bytes") is not None):
        out.append(
            {
                "colour": TIER_COLOURS[n % len(TIER_COLOURS)],
                "which": "tier 1" if n == 0 else f"tiers 1–{t['tier']}",
                "share": min(t["cumulative_share"] or 0.0, 1.0),
                "bytes": t["cumulative_bytes"],
            }
        )
    return out
