"""Wide tables split into blocks of columns, so that no number is ever cut short.

Rich shrinks a table that is wider than the console and puts "…" in the cells it
squeezes: a number that loses digits is a wrong number. Here the columns of a wide
matrix are dealt out into several tables ("columns 1–7 of 14", then "8–14 of 14"), each
narrow enough for the width, with the label columns repeated in every block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

Cell = Union[str, Text]


@dataclass
class Column:
    """One column of a table: its header, its cells and how they sit."""

    header: str
    cells: list[Cell]
    justify: str = "right"
    style: Optional[str] = None

    @property
    def width(self) -> int:
        """The cells' widest line, header included (headers never wrap either)."""
        texts = [self.header, *(c.plain if isinstance(c, Text) else c for c in self.cells)]
        return max(cell_len(line) for t in texts for line in (t.splitlines() or [""]))


@dataclass
class Blocks:
    """A table's content: label columns repeated in every block, then data columns."""

    title: str
    fixed: list[Column]
    columns: list[Column]
    row_styles: list[Optional[str]] = field(default_factory=list)


def table_width(widths: Sequence[int]) -> int:
    """Characters a Rich table of these column widths takes with the box we use
    (a border between columns and at both edges, one space of padding inside, none at
    the outer edges: ``pad_edge=False``)."""
    k = len(widths)
    return sum(widths) + 2 * k - 2 + (k + 1) if k else 0


def split_columns(fixed: Sequence[int], columns: Sequence[int], width: int) -> list[range]:
    """Consecutive runs of data columns such that fixed + run fits ``width``; at least
    one column per run, even when a single one is wider than ``width``."""
    runs: list[range] = []
    start = 0
    while start < len(columns):
        stop = start + 1
        while stop < len(columns) and table_width([*fixed, *columns[start : stop + 1]]) <= width:
            stop += 1
        runs.append(range(start, stop))
        start = stop
    return balanced(runs, fixed, columns, width)


def balanced(runs: list[range], fixed: Sequence[int], columns: Sequence[int], width: int) -> list[range]:
    """The same number of blocks with the columns spread evenly (16 columns as 6, 5, 5
    rather than 7, 7, 2), when every block still fits."""
    k, total = len(runs), len(columns)
    if k < 2:
        return runs
    sizes = [total // k + (1 if b < total % k else 0) for b in range(k)]
    starts = [sum(sizes[:b]) for b in range(k)]
    even = [range(a, a + size) for a, size in zip(starts, sizes)]
    fits = all(table_width([*fixed, *columns[r.start : r.stop]]) <= width for r in even)
    return even if fits else runs


def _table(title: str, columns: Sequence[Column], rows: int, row_styles: Sequence[Optional[str]]) -> Table:
    table = Table(title=Text(title), title_justify="left", header_style="bold", pad_edge=False)
    for c in columns:
        table.add_column(Text(c.header), justify=c.justify, style=c.style, no_wrap=True, min_width=c.width)  # type: ignore[arg-type]
    for i in range(rows):
        cells = [c.cells[i] if isinstance(c.cells[i], Text) else Text(str(c.cells[i])) for c in columns]
        table.add_row(*cells, style=row_styles[i] if i < len(row_styles) else None)
    return table


def fit(blocks: Blocks, width: int) -> list[Table]:
    """The table as one or more tables of at most ``width`` characters (a block's title
    says which columns it holds)."""
    rows = len((blocks.fixed or blocks.columns)[0].cells) if (blocks.fixed or blocks.columns) else 0
    runs = split_columns([c.width for c in blocks.fixed], [c.width for c in blocks.columns], width)
    if len(runs) <= 1:
        return [_table(blocks.title, [*blocks.fixed, *blocks.columns], rows, blocks.row_styles)]
    total = len(blocks.columns)
    out = []
    for run in runs:
        which = f"column {run.start + 1}" if len(run) == 1 else f"columns {run.start + 1}–{run.stop}"
        title = f"{blocks.title}  [{which} of {total}]"
        out.append(_table(title, [*blocks.fixed, *(blocks.columns[k] for k in run)], rows, blocks.row_styles))
    return out
