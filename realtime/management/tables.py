"""Plain-text tables for the operator commands: aligned columns, then a count."""

from collections.abc import Sequence


def write_table(
    stdout, columns: Sequence[str], rows: Sequence[Sequence[str]], *, noun: str
) -> None:
    """Write `columns` as a header, each row aligned under it, and "N <noun>s" last."""
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(columns)]
    for row in [list(columns), *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        stdout.write("  ".join(cells).rstrip())
    stdout.write(f"{len(rows)} {noun}{'s' if len(rows) != 1 else ''}")
