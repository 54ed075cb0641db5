"""Render query results for a terminal."""

from __future__ import annotations

_TSV_ESCAPES = {"\\t": "\t", "\\n": "\n", "\\\\": "\\", "\\'": "'", "\\0": "\0"}
MAX_CELL = 60


def _unescape(cell: str) -> str:
    if "\\" not in cell:
        return cell
    for escaped, plain in _TSV_ESCAPES.items():
        cell = cell.replace(escaped, plain)
    return cell


def tsv_to_table(tsv: bytes) -> str:
    """Align ``TSVWithNames`` output into columns with a header rule."""
    lines = tsv.decode("utf-8", errors="replace").splitlines()
    if not lines:
        return "(no rows)\n"
    rows = [[_shorten(_unescape(c)) for c in line.split("\t")] for line in lines]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    out = []
    for number, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    count = len(rows) - 1
    out.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(out) + "\n"


def _shorten(cell: str) -> str:
    cell = cell.replace("\n", "\\n")
    return cell if len(cell) <= MAX_CELL else cell[: MAX_CELL - 1] + "…"
