"""Formatting and markup primitives of the governance report.

Every value goes through ``fmt`` (missing values read "n/a", numbers in one style) and every text
through ``html.escape`` unless it is already ``Html``: the data come from untrusted feeds, so a
text can never become markup by accident.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

import numpy as np
import pandas as pd

NA = "n/a"
TEXT_CHARS = 200
GATE_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "not_evaluated": "#757575"}
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1100px;padding:1em 2em;color:#222;line-height:1.4}
h1{font-size:1.5em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin-bottom:.3em}
nav a{margin-right:.8em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.failed td,tr.flagged td{background:#fdecea}
.badge{display:inline-block;padding:.1em .6em;border-radius:.8em;color:#fff;font-weight:600}
.note{color:#666}.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
.text{max-width:40em;white-space:pre-wrap;word-break:break-word}
code{font-size:.85em;word-break:break-all}
.cluster{border-left:3px solid #ddd;padding-left:.8em;margin:1em 0}
.grid{display:flex;flex-wrap:wrap;gap:.5em}
img{max-width:100%}
"""
_NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+(e[-+]?\d+)?%?$")


class Html(str):
    """Markup that is already safe: inserted as is, never escaped again."""


# ---------------------------------------------------------------- formatting


def missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def fmt(value: Any) -> str:
    """Plain text of a value: integers with thousands separators, floats with 3 decimals (tiny
    ones in scientific notation so a p-value of 1e-9 does not read as zero)."""
    if missing(value):
        return NA
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value != 0 and abs(value) < 0.001:
            return f"{value:.2e}"
        return f"{value:,.3f}"
    return str(value)


def sig(value: Any) -> str:
    """Three significant digits, for p-values and test statistics whose size spans decades."""
    if missing(value) or isinstance(value, str):
        return fmt(value)
    return f"{float(value):.3g}"


def pct(value: Any, decimals: int = 2) -> str:
    """A rate in [0, 1] as a percentage."""
    if missing(value) or isinstance(value, str):
        return NA
    return f"{float(value) * 100:.{decimals}f}%"


def truncate(value: Any, limit: int = TEXT_CHARS) -> str:
    if missing(value):
        return NA
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- markup


def escaped(value: Any) -> Html:
    return value if isinstance(value, Html) else Html(escape(fmt(value)))


def para(content: Any, css: str = "") -> Html:
    attr = f' class="{css}"' if css else ""
    return Html(f"<p{attr}>{escaped(content)}</p>")


def heading(title: str) -> Html:
    return Html(f"<h3>{escape(title)}</h3>")


def span(value: Any, css: str) -> Html:
    return Html(f'<span class="{css}">{escaped(value)}</span>')


def text_block(value: Any) -> Html:
    """A data text, cut to TEXT_CHARS, wrapped so a long one does not widen the table."""
    return Html(f'<div class="text">{escaped(truncate(value))}</div>')


def code(value: Any) -> Html:
    return Html(f"<code>{escaped(value)}</code>")


def badge(status: Any) -> Html:
    colour = GATE_COLOURS.get(str(status), GATE_COLOURS["not_evaluated"])
    label = escape(fmt(status).replace("_", " "))
    return Html(
        f'<span class="badge gate-{escape(str(status))}" style="background:{colour}">{label}</span>'
    )


def _cell(value: Any) -> str:
    content = escaped(value)
    numeric = not isinstance(value, Html) and _NUMERIC.match(str(content)) is not None
    return f'<td class="num">{content}</td>' if numeric else f"<td>{content}</td>"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    table_id: str = "",
    row_classes: Sequence[str] | None = None,
) -> Html:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        css = row_classes[i] if row_classes else ""
        attr = f' class="{css}"' if css else ""
        body.append(f"<tr{attr}>{''.join(_cell(v) for v in row)}</tr>")
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return Html(
        f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def figures_table(items: Iterable[tuple[str, Any]]) -> Html:
    """A two-column table of key figures."""
    return table(("figure", "value"), list(items))


def image(png: bytes, alt: str) -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">')


def records(obj: Any, key_header: str = "name", value_header: str = "value") -> Html:
    """A table of a list of records or a mapping of records, whatever keys they carry."""
    rows: list[Mapping[Any, Any]]
    if isinstance(obj, Mapping):
        rows = [
            {key_header: key, **value}
            if isinstance(value, Mapping)
            else {key_header: key, value_header: value}
            for key, value in obj.items()
        ]
    elif isinstance(obj, list):
        rows = [r if isinstance(r, Mapping) else {"value": r} for r in obj]
    else:
        return para(NA)
    if not rows:
        return para("none", "note")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    return table(
        columns, [[_cell_value(column, row.get(column)) for column in columns] for row in rows]
    )


def _cell_value(column: str, value: Any) -> Any:
    return code(value) if column == "sha256" and not missing(value) else value


def frame_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[list[Any]]:
    """Rows of the named columns; a column the table lacks reads n/a."""
    data = [frame[c].tolist() if c in frame.columns else [None] * len(frame) for c in columns]
    return [list(row) for row in zip(*data, strict=True)] if data else []


def share(part: Any, whole: Any) -> str:
    if missing(part) or missing(whole) or not whole:
        return NA
    return pct(part / whole)


def frame_table(frame: pd.DataFrame, limit: int, table_id: str = "") -> Html:
    """Any table, whatever its columns, first rows only, long texts cut."""
    shown = frame.head(limit)
    rows = [
        [truncate(v) if isinstance(v, str) else v for v in row]
        for row in frame_rows(shown, list(frame.columns))
    ]
    note = (
        para(f"showing {len(shown)} of {len(frame):,}", "note")
        if len(frame) > len(shown)
        else Html("")
    )
    return Html(table([str(c) for c in frame.columns], rows, table_id=table_id) + note)


def page(title: str, body: str, nav: str = "") -> str:
    """A whole self-contained HTML document; ``title`` is escaped already."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head>\n"
        f"<body>\n<header><h1>{title}</h1><nav>{nav}</nav></header>\n{body}\n</body>\n</html>\n"
    )
