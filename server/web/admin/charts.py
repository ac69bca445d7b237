"""Charts of the back office, drawn on the server as SVG by pygal and inlined into the page.

The back office's CSP allows no inline script or style, so each chart is rendered without pygal's tooltip
script (`js=[]`) and its <style> element and `style` attributes are taken out of the SVG; the CSS pygal
writes for each kind of chart is served instead as one stylesheet from /admin/static/charts.css, its
`#chart-<uuid>` prefix turned into a class the SVG of that kind carries. Every chart keeps its numbers in
the SVG (`<desc>` of each point) and the page shows them in a table too, so nothing needs JavaScript.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree

import pygal
from pygal.style import Style

SVG_NS = "http://www.w3.org/2000/svg"
ElementTree.register_namespace("", SVG_NS)
ElementTree.register_namespace("xlink", "http://www.w3.org/1999/xlink")

STYLE = Style(background="transparent", plot_background="#ffffff", font_family="system-ui, sans-serif",
              colors=("#c62828", "#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#5d4037"),
              label_font_size=13, major_label_font_size=13, legend_font_size=14, value_font_size=13,
              title_font_size=15)
COMMON: dict[str, Any] = {
    "style": STYLE, "js": [], "disable_xml_declaration": True, "explicit_size": False, "legend_at_bottom": True,
    "legend_at_bottom_columns": 2, "margin": 8, "truncate_legend": 30, "print_values": False,
}


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity: the memo below keys on it
class Kind:
    """A kind of chart: the pygal class and options its SVG is drawn with, and the CSS class it carries."""

    name: str
    factory: type[Any]
    options: tuple[tuple[str, Any], ...]

    def make(self, **extra: Any) -> Any:
        return self.factory(**{**COMMON, **dict(self.options), **extra})


# crowd of one area today: series 0 is what was measured, 1 the forecast, 2 the alert threshold (dashed)
CROWD_DAY = Kind("crowd-day", pygal.Line, (("width", 480), ("height", 260), ("range", (0, 100)),
                                           ("show_minor_x_labels", False), ("x_labels_major_every", 3),
                                           ("stroke_style", {"width": 2}), ("dots_size", 2)))
FUNNEL = Kind("funnel", pygal.Bar, (("width", 480), ("height", 260), ("rounded_bars", 2)))
OFFERS = Kind("offers", pygal.HorizontalBar, (("width", 480), ("height", 320),))
OFFER_DAYS = Kind("offer-days", pygal.Line, (("width", 720), ("height", 280), ("show_minor_x_labels", False),
                                             ("x_labels_major_every", 5), ("dots_size", 2),
                                             ("x_label_rotation", 30)))
STAFFING = Kind("staffing", pygal.Line, (("width", 720), ("height", 300), ("range", (0, 100)),
                                         ("show_minor_x_labels", False), ("x_labels_major_every", 2),
                                         ("dots_size", 1.5)))
KINDS = (CROWD_DAY, FUNNEL, OFFERS, OFFER_DAYS, STAFFING)
# the threshold of CROWD_DAY is its third series: dashed, so it reads as a limit and not as data
EXTRA_CSS = (".chart-crowd-day .serie-2 .line{stroke-dasharray:6,4}"
             ".chart-crowd-day .serie-2 .dots{display:none}"
             ".pygal-chart{width:100%;height:auto;display:block}"
             ".pygal-chart .tooltip{display:none}")
_PREFIX = re.compile(r"#chart-[0-9a-f-]+ ?")
MAX_SERIES = 7


Series = Sequence[float | None]


def render(kind: Kind, title: str, x_labels: Sequence[str], series: Sequence[tuple[str, Series]]) -> str:
    """The chart as an inline <svg> element: no script, no style element, no style attribute.

    pygal takes ~30 ms a chart, and a dashboard card is drawn again every 20 s mostly with the same numbers:
    the same chart is answered from a small memo instead."""
    return _render(kind, title, tuple(x_labels), tuple((name, tuple(values)) for name, values in series))


@functools.lru_cache(maxsize=512)
def _render(kind: Kind, title: str, x_labels: tuple[str, ...],
            series: tuple[tuple[str, tuple[float | None, ...]], ...]) -> str:
    chart = kind.make(title=title)
    chart.x_labels = list(x_labels)
    for name, values in series:
        chart.add(name, list(values))
    root = chart.render_tree()
    for parent in root.iter():
        for child in list(parent):
            if child.tag in (f"{{{SVG_NS}}}style", f"{{{SVG_NS}}}script", "style", "script"):
                parent.remove(child)
        parent.attrib.pop("style", None)
    root.set("class", f"pygal-chart chart-{kind.name}")
    root.set("role", "img")
    root.set("aria-label", title)
    text = ElementTree.tostring(root, encoding="unicode")
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def _css_of(kind: Kind) -> str:
    """pygal's own CSS for a chart of this kind (as many series as a chart here may have), re-scoped."""
    chart = kind.make()
    chart.x_labels = ["a", "b"]
    for n in range(MAX_SERIES):
        chart.add(str(n), [1, 2])
    root = chart.render_tree()
    styles = [el.text or "" for el in root.iter() if el.tag in (f"{{{SVG_NS}}}style", "style")]
    return _PREFIX.sub(f".chart-{kind.name} ", "\n".join(styles))


@functools.cache
def stylesheet() -> bytes:
    return ("\n".join(_css_of(kind) for kind in KINDS) + "\n" + EXTRA_CSS + "\n").encode()
