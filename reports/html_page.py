"""Self-contained HTML pages for the reports (`detect --report`, `noisetrace report`).

A report is mailed as a zip and opened from disk, often where nothing may be fetched: so a
page carries its style and its one small script inline, refers to its images by relative
paths, and escapes every text it shows (file names come from users' disks and may hold
`<`, quotes or `&`).
"""
from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Mapping

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#1d1d1f;background:#fff}
h1{font-size:1.5em;margin:.2em 0 .5em;word-break:break-all}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}th,td{border-bottom:1px solid #e3e3e3;padding:.35em .6em;text-align:left;vertical-align:middle}
th{background:#f4f4f6;font-weight:600}th[data-sort]{cursor:pointer;text-decoration:underline dotted}
td:first-child{white-space:nowrap}
.v{display:inline-block;padding:.15em .55em;border-radius:.8em;font-weight:600;white-space:nowrap}
.likely-fake{background:#fde2e1;color:#a4161a}.likely-real{background:#def5e3;color:#1b6b35}
.no-usable-face,.unreadable{background:#ececec;color:#555}
.muted{color:#666}.small{font-size:.85em}img.thumb{height:72px;display:block}
img.px{image-rendering:pixelated;width:100%;height:auto;display:block}
.frames{display:flex;flex-wrap:wrap;gap:14px}.frame{border:1px solid #ddd;border-radius:6px;padding:8px;background:#fafafa;width:480px;max-width:100%}
.frame .full{width:100%;display:block;margin-bottom:6px}
.quad{display:grid;grid-template-columns:repeat(4,1fr);gap:6px;margin-top:4px}.quad figure{margin:0}.quad figcaption{font-size:.8em;color:#555}
dl.card{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}dl.card dt{font-weight:600}dl.card dd{margin:0;word-break:break-word}
.legend span{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin:0 .3em 0 .8em;border:3px solid}
"""

# Sorts a table's body by the numeric data attribute its clicked header names (data-sort),
# descending first; rows without a value stay at the end.
SORT_SCRIPT = """
document.querySelectorAll("th[data-sort]").forEach(function (th) {
  th.addEventListener("click", function () {
    var body = th.closest("table").tBodies[0], key = th.dataset.sort;
    var down = th.dataset.dir !== "desc"; th.dataset.dir = down ? "desc" : "asc";
    var value = function (tr) { var v = tr.getAttribute("data-" + key); return v === null || v === "" ? null : parseFloat(v); };
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = value(a), y = value(b);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      return down ? y - x : x - y;
    }).forEach(function (tr) { body.appendChild(tr); });
  });
});
"""


def esc(text: object) -> str:
    """Text as HTML shows it, quotes included (it may sit inside an attribute)."""
    return html.escape(str(text), quote=True)


def fmt(x: float | None, digits: int = 3) -> str:
    """A figure for the page: `-` where there is none."""
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def css_class(label: str) -> str:
    """"likely fake" -> "likely-fake": a verdict's style."""
    return label.replace(" ", "-")


def page(title: str, body: str, script: str = "") -> str:
    """A whole page: inline style, `body` (HTML), and `script` inline at its end."""
    tail = f"<script>{script}</script>\n" if script else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head>\n<body>\n{body}\n{tail}</body></html>\n")


def table(headers: Iterable[str], rows: Iterable[Iterable[str]], head_attrs: Mapping[int, str] | None = None,
          row_attrs: Iterable[str] | None = None) -> str:
    """A table of cells that are HTML already (escape text with `esc`); `head_attrs` adds
    attributes to some header cells by position, `row_attrs` to each body row."""
    head_attrs = head_attrs or {}
    ths = "".join(f"<th{' ' + head_attrs[i] if i in head_attrs else ''}>{h}</th>" for i, h in enumerate(headers))
    rows = list(rows)
    attrs = list(row_attrs) if row_attrs is not None else [""] * len(rows)
    trs = "".join(f"<tr{' ' + a if a else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row, a in zip(rows, attrs))
    return f"<table><thead><tr>{ths}</tr></thead><tbody>\n{trs}</tbody></table>"


def definitions(items: Mapping[str, str]) -> str:
    """A two-column list of (term, HTML value)."""
    return "<dl class=\"card\">" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in items.items()) + "</dl>"


def image(src: str, alt: str, cls: str = "") -> str:
    """An <img> of a file beside the page (`src` relative, '/'-separated)."""
    return f"<img src=\"{esc(src)}\" alt=\"{esc(alt)}\"" + (f" class=\"{cls}\"" if cls else "") + ">"


def write_page(path: str, text: str) -> None:
    """Write through a temp file and a rename, so a page is never seen half written
    (an index rewritten after each video while someone has it open)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
