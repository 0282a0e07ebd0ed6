"""Scrapes of the service's ``/metrics`` and the increases between them.

The verdict reads the service's own counters (cache hits, validations, lookup
errors) the way Prometheus would: as increases between scrapes. A counter that
goes down between two scrapes was reset, which means the process restarted
(or its metrics were wiped); Prometheus's ``increase()`` then counts from zero
again, and so does :func:`increases`, but the verdict says so and does not
trust a target computed across a reset.
"""

from __future__ import annotations

import itertools
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client.parser import text_string_to_metric_families

from loadtests.servers import ServerError

#: A scraped sample: metric name as exposed (``..._total``), labels, value.
Sample = tuple[str, Mapping[str, str], float]
_Key = tuple[str, tuple[tuple[str, str], ...]]

#: Sample suffixes of cumulative series: they only go up while a process lives.
_CUMULATIVE_SUFFIXES: Final = ("_total", "_count", "_bucket", "_sum")


class ScrapeError(ServerError):
    """``/metrics`` could not be fetched or parsed."""


@dataclass(frozen=True, slots=True)
class Scrape:
    """One scrape of ``/metrics``.

    Attributes:
        at: Wall-clock time of the scrape (seconds since the epoch).
        text: The exposition as received.
        samples: Every sample, ``(name, labels, value)``.
        cumulative: Names of the samples of counters and histograms, the
            series that only go up while the process lives.
    """

    at: float
    text: str
    samples: tuple[Sample, ...]
    cumulative: frozenset[str]

    def values(self) -> dict[_Key, float]:
        """Return the cumulative samples' values by (name, sorted labels)."""
        return {
            _key(name, labels): value
            for name, labels, value in self.samples
            if name in self.cumulative
        }

    def created(self) -> dict[_Key, float]:
        """Return the ``_created`` timestamps, which change when a process restarts."""
        return {
            _key(name, labels): value
            for name, labels, value in self.samples
            if name.endswith("_created")
        }


def _key(name: str, labels: Mapping[str, str]) -> _Key:
    return name, tuple(sorted(labels.items()))


def parse(text: str, at: float | None = None) -> Scrape:
    """Parse a Prometheus text exposition into a :class:`Scrape`.

    Raises:
        ScrapeError: The text is not in the Prometheus text format.
    """
    samples: list[Sample] = []
    cumulative: set[str] = set()
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.append((sample.name, dict(sample.labels), float(sample.value)))
                if family.type in ("counter", "histogram") and sample.name.endswith(
                    _CUMULATIVE_SUFFIXES
                ):
                    cumulative.add(sample.name)
    except ValueError as error:
        raise ScrapeError(f"unreadable /metrics exposition: {error}") from error
    return Scrape(
        at=time.time() if at is None else at,
        text=text,
        samples=tuple(samples),
        cumulative=frozenset(cumulative),
    )


def fetch(metrics_url: str, *, timeout: float = 5.0) -> Scrape:
    """Scrape ``metrics_url`` once.

    Raises:
        ScrapeError: The endpoint did not answer 200, or answered garbage.
    """
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as response:
            body = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError) as error:
        raise ScrapeError(f"cannot scrape {metrics_url}: {error}") from error
    return parse(body)


@dataclass(frozen=True, slots=True)
class Increases:
    """What the counters counted over a sequence of scrapes.

    Attributes:
        samples: ``(name, labels, increase)`` for every cumulative series,
            summed over consecutive scrapes; after a reset the new value
            counts in full, as Prometheus's ``increase()`` does.
        resets: One line per detected reset: between which scrapes, and
            which series went down (or restarted its ``_created`` time).
    """

    samples: tuple[Sample, ...]
    resets: tuple[str, ...]


def increases(scrapes: Sequence[Scrape]) -> Increases:
    """Return the counters' increases from the first scrape to the last.

    Args:
        scrapes: Scrapes in time order; at least two. Scrapes taken between
            the first and the last catch resets that the end points alone
            would miss (a restart early in the run, followed by enough
            traffic to climb past the starting value).

    Raises:
        ValueError: Fewer than two scrapes.
    """
    if len(scrapes) < 2:
        raise ValueError("need at least two scrapes")
    totals: dict[_Key, float] = {}
    labels_of: dict[_Key, Mapping[str, str]] = {}
    resets: list[str] = []
    for index, (before, after) in enumerate(itertools.pairwise(scrapes), start=1):
        old, new = before.values(), after.values()
        went_down = sorted(
            f"{name}{dict(labels)}"
            for (name, labels), value in new.items()
            if value < old.get((name, labels), 0.0)
        )
        old_created, new_created = before.created(), after.created()
        recreated = sorted(
            name
            for (name, labels), value in new_created.items()
            if (name, labels) in old_created and old_created[(name, labels)] != value
        )
        if went_down or recreated:
            what = _few(went_down or recreated)
            resets.append(f"between scrapes {index} and {index + 1}: {what}")
        # A restart resets every series: one that climbed past its old value
        # since then counted from zero too, so its new value counts in full.
        reset = bool(went_down or recreated)
        for key, value in new.items():
            labels_of[key] = dict(key[1])
            previous = old.get(key, 0.0)
            step = value if reset or value < previous else value - previous
            totals[key] = totals.get(key, 0.0) + step
    samples = tuple(
        (name, labels_of[(name, labels)], total)
        for (name, labels), total in sorted(totals.items())
    )
    return Increases(samples=samples, resets=tuple(resets))


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(names[:3])
    return shown if len(names) <= 3 else f"{shown} and {len(names) - 3} more"
