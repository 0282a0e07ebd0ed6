"""Raw per-request samples: one CSV line per request, one file per Locust process.

Locust's own statistics round response times into buckets (1 ms up to 100 ms,
10 ms up to 1 s), too coarse to judge a p95 near 200 ms. So every Locust
process that runs users appends each request to its own file,
``samples-<pid>.csv`` in the samples folder, and the verdict reads all of them:
a distributed run (``--processes N``) gives one file per worker and the same
verdict as one process.

The files must land where the verdict reads them: every Locust process runs
on this machine (``--processes N``).

Columns: ``start`` (wall-clock seconds since the epoch, when the request was
sent), ``response_ms`` (float, unrounded), ``status`` (HTTP status, 0 when no
response came), ``ok`` (1 unless Locust counted the request as failed),
``name`` (the request's name, which carries its workload class).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TextIO

COLUMNS: Final = ("start", "response_ms", "status", "ok", "name")
#: The file holding the wall-clock time the load started, in the samples folder.
STARTED_FILE: Final = "load-started"
_PATTERN: Final = "samples-*.csv"


@dataclass(frozen=True, slots=True)
class RequestSample:
    """One request as a Locust user saw it."""

    start: float
    response_ms: float
    status: int
    ok: bool
    name: str

    @property
    def end(self) -> float:
        """Wall-clock time the answer (or the failure) arrived."""
        return self.start + self.response_ms / 1000


class SampleWriter:
    """Appends samples to this process's file; line-buffered, so a killed
    process loses at most the line it was writing.

    Args:
        folder: The samples folder, shared by every process of the run.
        pid: The process id naming the file; this process's unless given.
    """

    def __init__(self, folder: Path, pid: int | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"samples-{pid or os.getpid()}.csv"
        fresh = not self.path.exists()
        self._file: TextIO | None = self.path.open("a", newline="", buffering=1)
        self._writer = csv.writer(self._file)
        if fresh:
            self._writer.writerow(COLUMNS)

    def write(
        self, start: float, response_ms: float, status: int, ok: bool, name: str
    ) -> None:
        """Append one request."""
        if self._file is not None:
            self._writer.writerow(
                (f"{start:.6f}", f"{response_ms:.3f}", status, int(ok), name)
            )

    def close(self) -> None:
        """Close the file; later writes are dropped."""
        if self._file is not None:
            self._file.close()
            self._file = None


# TODO(#6): workers on other machines (``--worker --master-host``) would write
# their samples there, out of the verdict's reach; ship them to the master in
# Locust's worker reports to support a multi-machine run.
def sample_files(folder: Path) -> list[Path]:
    """Return the samples files of a run, in name order."""
    return sorted(folder.glob(_PATTERN))


def read_samples(folder: Path) -> list[RequestSample]:
    """Read every process's samples, ordered by start time.

    A line cut short (a process killed while writing it) is skipped.
    """
    samples: list[RequestSample] = []
    for path in sample_files(folder):
        with path.open(newline="") as handle:
            samples.extend(_parse(csv.reader(handle)))
    samples.sort(key=lambda sample: sample.start)
    return samples


def _parse(rows: Iterable[list[str]]) -> Iterable[RequestSample]:
    for row in rows:
        if len(row) != len(COLUMNS) or row[0] == COLUMNS[0]:
            continue
        try:
            yield RequestSample(
                start=float(row[0]),
                response_ms=float(row[1]),
                status=int(row[2]),
                ok=row[3] == "1",
                name=row[4],
            )
        except ValueError:
            continue
