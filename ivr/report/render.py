"""The report as ONE self-contained HTML file (inline CSS, plots as data: URIs) and the tables
behind the figures as CSV. Plots with matplotlib's Agg backend; Korean text needs a CJK font
(Debian's fonts-noto-cjk): without it the report fails instead of drawing empty boxes."""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ivr.report.figures import Table  # noqa: E402
from ivr.report.reader import ReportError  # noqa: E402

#: Where Debian's fonts-noto-cjk puts the sans-serif CJK collection.
CJK_FONTS = (Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),)
CJK_FAMILY = "Noto Sans CJK KR"

CSS = """body{font-family:'Noto Sans CJK KR',sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;padding:2px 8px;
text-align:right}th{background:#eee}.synthetic{background:#fdd;padding:.5em;font-weight:bold}
td.under{background:#f99}td.over{background:#9cf}img{max-width:100%}
@page{size:A4;margin:12mm}h2{break-after:avoid}tr,img{break-inside:avoid}
body{print-color-adjust:exact;-webkit-print-color-adjust:exact}th,td{overflow-wrap:anywhere}"""


def use_cjk_font(fonts: Sequence[Path] = CJK_FONTS) -> str:
    """Register the CJK font with matplotlib; ReportError when it is not installed."""
    for path in fonts:
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            matplotlib.rcParams["font.family"] = CJK_FAMILY
            return CJK_FAMILY
    where = ", ".join(str(p) for p in fonts)
    raise ReportError(
        f"no Korean font ({where}): install Debian's fonts-noto-cjk (tools/bootstrap.sh)"
    )


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bar(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([str(x) for x in labels], values, color="#4a7")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    return _png(fig)


def plot(table: Table, t: dict[str, str]) -> str | None:
    """The plot of one table (a data: URI), or None for tables shown as numbers only."""
    title = t[table.key]
    if table.key == "contacts_per_day":
        per_day: dict[str, int] = {}
        for day, _d, _line, n in table.rows:
            per_day[day] = per_day.get(day, 0) + n
        return _bar([d[5:] for d in per_day], list(per_day.values()), title)
    if table.key == "arrivals_heatmap":
        grid = [[0] * 24 for _ in range(7)]
        for wd, h, n in table.rows:
            grid[wd][h] = n
        fig, ax = plt.subplots(figsize=(9, 3))
        im = ax.imshow(grid, aspect="auto", cmap="Greens")
        ax.set_yticks(range(7), t["weekdays"].split(","))
        ax.set_xticks(range(24))
        ax.set_xlabel(t["hour"])
        ax.set_title(title)
        fig.colorbar(im, ax=ax, label=t["calls"])
        return _png(fig)
    if table.key == "funnel":  # horizontal: each step's words read in full, top to bottom
        fig, ax = plt.subplots(figsize=(8, 3))
        labels = [row_label(table, r[0], t) for r in table.rows]
        ax.barh(labels, [r[1] for r in table.rows], color="#4a7")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(title)
        return _png(fig)
    if table.key in ("abandonment_by_wait", "handle_times"):
        col = 2 if table.key == "abandonment_by_wait" else 1
        return _bar([r[0] for r in table.rows], [r[col] for r in table.rows], title)
    if table.key == "abandonment_by_wait_hour":  # the share who left, per hour of the day
        shares = [r[-3] or 0.0 for r in table.rows]
        return _bar([str(r[0]) for r in table.rows], shares, title)
    if table.key == "satisfaction" and table.rows:
        total = table.rows[-1]  # all lines (or the only one): the distribution 1-5
        return _bar([f"{n}" for n in range(1, 6)], list(total[3:8]), f"{title} – {t['score']}")
    if table.key == "staffing":
        fig, ax = plt.subplots(figsize=(10, 3))
        x = range(len(table.rows))
        ax.step(x, [r[5] for r in table.rows], where="mid", label=t["needed"], color="#c33")
        if all(r[6] is not None for r in table.rows):
            ax.step(x, [r[6] for r in table.rows], where="mid", label=t["rostered"])
            for i, r in enumerate(table.rows):
                if r[7] in ("under", "over"):
                    color = "#f99" if r[7] == "under" else "#9cf"
                    ax.axvspan(i - 0.5, i + 0.5, color=color, alpha=0.5, lw=0)
        ax.set_xticks(range(0, 168, 24), t["weekdays"].split(","))
        ax.legend()
        ax.set_title(title)
        return _png(fig)
    return None


def row_label(table: Table, first: Any, t: dict[str, str]) -> str:
    """What a row's first cell reads in the report: its words (text key `<table>.<cell>`) where
    the report has them, else the cell itself (the CSV keeps the plain keys)."""
    return t.get(f"{table.key}.{first}", str(first))


def _cell(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return html.escape(str(v))


def _html_table(table: Table, t: dict[str, str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cls = ""
        if table.key in ("staffing", "staffing_erlang_a") and row[-1] in ("under", "over"):
            cls = f' class="{row[-1]}"'
        label = t.get(f"{table.key}.{row[0]}")
        first = _cell(row[0]) if label is None else html.escape(label)
        cells = [first, *(_cell(v) for v in row[1:])]
        body.append("<tr>" + "".join(f"<td{cls}>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_report(
    tables: Sequence[Table], t: dict[str, str], header: Sequence[tuple[str, str]], synthetic: bool
) -> str:
    """The whole report: a title, the header lines, each figure's plot and table."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{t['title']}</title>"]
    parts.append(f"<style>{CSS}</style></head><body><h1>{html.escape(t['title'])}</h1>")
    if synthetic:
        parts.append(f"<p class='synthetic'>{html.escape(t['synthetic'])}</p>")
    for name, value in header:
        parts.append(f"<p>{html.escape(name)}: {html.escape(value)}</p>")
    for table in tables:
        parts.append(f"<h2 id='{table.key}'>{html.escape(t[table.key])}</h2>")
        note = t.get(table.key + "_note")
        if note is not None:
            parts.append(f"<p>{html.escape(note)}</p>")
        img = plot(table, t)
        if img is not None:
            parts.append(f"<img alt='{html.escape(t[table.key])}' src='{img}'>")
        parts.append(_html_table(table, t))
    if t.get("not_yet"):  # what the report does not have yet, when something is missing
        parts.append(f"<p><small>{html.escape(t['not_yet'])}</small></p>")
    parts.append("</body></html>")
    return "".join(parts)


def write_csv(tables: Sequence[Table], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = directory / f"{table.key}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(table.columns)
            w.writerows(["" if v is None else v for v in row] for row in table.rows)
        written.append(path)
    return written
