"""What the dashboard checks report, and the exceptions this package raises.

A check (the linter, the decode against Grafana's own models, the PromQL parse,
the queries against a real Prometheus) returns a list of :class:`Problem`; an
empty list means the check passed. Exceptions are for what stops a check from
running at all, or a build that must not write its output::

    DashboardError
    ├── LintError                the generated JSON breaks a lint rule
    ├── ToolMissingError         promtool or grafana-foundation-sdk is absent
    └── PrometheusQueryError     Prometheus could not be reached or answered badly
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of a check.

    Attributes:
        rule: Which rule or check found it, e.g. ``panel-units-rule``.
        where: The place in the dashboard, e.g. ``panel 7 "Cache hit rate"``.
        message: What is wrong, for people.
    """

    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message} [{self.rule}]"


class DashboardError(Exception):
    """Root of every exception raised by this package."""


class LintError(DashboardError):
    """The generated dashboard breaks at least one lint rule.

    Attributes:
        problems: Every problem found.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        listed = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} dashboard problem(s):\n{listed}")


class ToolMissingError(DashboardError):
    """A tool a check needs (promtool, grafana-foundation-sdk) is not installed."""


class PrometheusQueryError(DashboardError):
    """Prometheus could not be reached, or answered something unreadable."""
