"""Argument types shared by the ``bdobs`` commands of this package."""

from __future__ import annotations

import argparse
import math
import re
from typing import Final

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
#: Every run stops by itself; a day is longer than any soak this bundle runs.
MAX_DURATION: Final = 24 * 3600.0
_SECONDS_PER: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text: str) -> float:
    """Parse ``30``, ``30s``, ``2m`` or ``1.5h`` into seconds (> 0, at most 24 h).

    Raises:
        argparse.ArgumentTypeError: The text is not a positive duration.
    """
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (use e.g. 30s, 2m, 5m or seconds)"
        )
    seconds = float(match.group(1)) * _SECONDS_PER[match.group(2)]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"a duration must be > 0, got {text!r}")
    if seconds > MAX_DURATION:
        raise argparse.ArgumentTypeError(
            f"a duration must be at most 24h, got {text!r}"
        )
    return seconds


def positive_number(text: str) -> float:
    """Parse a finite number > 0, e.g. a rate per minute."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value
