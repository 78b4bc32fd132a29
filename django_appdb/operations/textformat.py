"""Plain-text tables for the ``appdb_*`` commands."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Return ``headers`` and ``rows`` as left-aligned lines, columns two spaces apart.

    The last column is not padded, so no line ends in spaces.
    """
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [str(cell).ljust(width) for cell, width in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, str(cells[-1])])

    return [line(headers), *(line(row) for row in rows)]
