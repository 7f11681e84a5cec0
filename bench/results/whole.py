"""Which rows of a results file are whole, so that a row cut part-way is never read as data.

Every row this package writes ends with a newline, and a write replaces the whole file (``bench.results.atomic``),
so a results file can end part-way through a row only when something else cut it: an older noprop-bench that
appended in place when the disk filled up, a crash of a copy, a hand edit. Such a *torn* row (a file that does not
end with a newline, or ends inside a quoted cell) can look whole to a lenient CSV reader: pandas pads the missing
cells with empty values, and Python's ``csv`` closes an unterminated quoted ``config_json`` at the end of the file.
So every reader and writer of the store parses the file here first: a torn last row is refused with one line naming
the file and its line (``TornRowError``), and only ``--set-aside-torn`` moves it to a side file, byte for byte.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from bench.results.atomic import ResultsError

TORN_SUFFIX = ".torn"  # runs.csv's torn rows are set aside into runs.csv.torn


class TornRowError(ResultsError):
    """A results file ends part-way through its last row; ``path`` and ``line`` (1-based, the header is line 1)."""

    def __init__(self, path: Path, line: int) -> None:
        super().__init__(
            f"{path} line {line} is a torn row (the file ends part-way through it, as a crash or a full disk leaves "
            f"it), so it is not read; add --set-aside-torn to the command (`run --resume --set-aside-torn`) to move "
            f"it to {side_file(path)} and keep every whole row, or delete that line by hand"
        )
        self.path, self.line = path, line


@dataclass(frozen=True)
class Parsed:
    """A results file parsed: its whole records as (line, cells), header first; the byte length of the whole part;
    and the line where a torn last row begins (``None`` when there is none)."""

    records: list[tuple[int, list[str]]]
    whole_size: int
    torn_line: int | None


def side_file(path: Path) -> Path:
    """Where ``--set-aside-torn`` puts the torn rows of ``path``."""
    return path.with_name(path.name + TORN_SUFFIX)


def whole_records(path: Path, data: bytes) -> list[tuple[int, list[str]]]:
    """The records of ``data`` (the bytes of ``path``) as (line, cells), header first; raises TornRowError for a
    torn last row and ResultsError for a malformed one before it."""
    parsed = parse(path, data)
    if parsed.torn_line is not None:
        raise TornRowError(path, parsed.torn_line)
    return parsed.records


def parse(path: Path, data: bytes) -> Parsed:
    """Split ``data`` into whole records and a torn tail; a row other than the last with the wrong number of cells
    (or CSV that cannot be parsed) is a ResultsError naming its line, since no crash leaves that."""
    lines = io.BytesIO(data).readlines()  # split after b"\n" only, as the CSV writer ends its rows
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    reader = csv.reader(_decoded(path, lines), strict=True)
    records: list[tuple[int, list[str]]] = []
    torn, last_end = None, 0
    while torn is None:
        first = reader.line_num + 1  # the record about to be read begins on this line
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            if reader.line_num < len(lines):
                raise ResultsError(f"{path} line {first} is not valid CSV ({err}); repair that line or move the "
                                   "file away") from err
            torn = first  # the end of the file came inside a quoted cell
        else:
            if cells:
                records.append((first, cells))
                last_end = reader.line_num
    if torn is None and data and not data.endswith(b"\n"):  # the last line is cut: the record it ends, if any
        torn = records.pop()[0] if last_end == len(lines) else len(lines)
    _check_widths(path, records)
    return Parsed(records, len(data) if torn is None else starts[torn - 1], torn)


def _decoded(path: Path, lines: list[bytes]) -> list[str]:
    """The lines as text; bytes that are not UTF-8 are a ResultsError naming the line (never replaced, which a
    writer would then store), except in a torn last line, which may end part-way through a character."""
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            texts.append(line.decode("utf-8"))
        except UnicodeDecodeError as err:
            if number < len(lines) or line.endswith(b"\n"):
                raise ResultsError(f"{path} line {number} is not UTF-8 text ({err.reason}); repair that line or "
                                   "move the file away") from err
            texts.append(line.decode("utf-8", errors="replace"))
    return texts


def _check_widths(path: Path, records: list[tuple[int, list[str]]]) -> None:
    """Every row has the header's number of cells (a reader would pad a short one with empty values)."""
    if not records:
        return
    width = len(records[0][1])
    for line, cells in records[1:]:
        if len(cells) != width:
            raise ResultsError(f"{path} line {line} has {len(cells)} cells where its header has {width}; repair "
                               "that line or move the file away")
