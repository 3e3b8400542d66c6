"""The report as a list of blocks, written twice from the same blocks: report.md (figures as files beside it) and
report.html, one self-contained page (figures embedded as base64) to open in a browser."""
import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path


def embedded(path: Path, alt: str) -> str:
    """An <img> holding the PNG itself, so the page needs no other file."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


@dataclass
class Heading:
    """A section title; level 1 is the page's."""

    level: int
    text: str

    def markdown(self, out: Path) -> str:
        return f"{'#' * self.level} {self.text}"

    def html(self) -> str:
        return f"<h{self.level}>{html.escape(self.text)}</h{self.level}>"


@dataclass
class Text:
    """A paragraph of plain text."""

    text: str

    def markdown(self, out: Path) -> str:
        return self.text

    def html(self) -> str:
        return f"<p>{html.escape(self.text)}</p>"


@dataclass
class Table:
    """A table of cells (None shows as "-")."""

    header: list[str]
    rows: list[list]

    def cells(self) -> list[list[str]]:
        """Every row's cells as text."""
        return [["-" if cell is None else str(cell) for cell in row] for row in self.rows]

    def markdown(self, out: Path) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in self.cells()])

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                       for row in self.cells())
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass
class Figure:
    """A PNG in the report's dir."""

    path: Path

    def markdown(self, out: Path) -> str:
        return f"![{self.path.stem}]({os.path.relpath(self.path, out)})"

    def html(self) -> str:
        return f'<figure class="plot">{embedded(self.path, self.path.stem)}</figure>'


@dataclass
class Gallery:
    """Images side by side, each with its caption (the sample grids of each group's best run)."""

    images: list[tuple[str, Path]]

    def markdown(self, out: Path) -> str:
        return "\n".join(f"- {caption}: ![{caption}]({os.path.relpath(path, out)})" for caption, path in self.images)

    def html(self) -> str:
        figures = "".join(f"<figure>{embedded(path, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
                          for caption, path in self.images)
        return f'<div class="gallery">{figures}</div>'


def markdown(blocks: list, out: Path) -> str:
    """The blocks as GitHub-flavoured markdown, images linked relative to `out`."""
    return "\n\n".join(block.markdown(out) for block in blocks) + "\n"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1800px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
figure { margin: 1em 0; }
figure.plot { display: inline-block; vertical-align: top; margin: 0 12px 12px 0; max-width: 100%; }
figure img { max-width: 100%; border: 1px solid #eee; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { flex: 0 1 320px; margin: 0; }
.gallery img { width: 100%; }
figcaption { font-size: 13px; color: #555; }
"""


def page(blocks: list, title: str) -> str:
    """The blocks as one HTML page with every figure embedded."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(block.html() for block in blocks)
            + "\n</body></html>\n")
