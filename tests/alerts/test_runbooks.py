"""Runbooks: one per alert, with the four sections, where runbook_url points."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from alerts import RUNBOOKS_DIR, alert_names

_REPOSITORY = Path(__file__).resolve().parents[2]
_SECTIONS = (
    "## What it means",
    "## How to check",
    "## What to do",
    "## How to roll back",
)


@pytest.mark.parametrize("alert", alert_names())
def test_every_alert_has_a_runbook_with_the_four_sections(alert: str) -> None:
    """The runbook is titled by the alert and says meaning, check, act, roll back."""
    text = (RUNBOOKS_DIR / f"{alert}.md").read_text()

    assert text.startswith(f"# {alert}\n")
    positions = [text.index(section) for section in _SECTIONS]
    assert positions == sorted(positions)


def test_runbook_url_points_at_the_runbook_file(
    alerts_by_name: dict[str, dict[str, Any]],
) -> None:
    """The default runbook_url is a repository path to an existing file."""
    for name, rule in alerts_by_name.items():
        url = rule["annotations"]["runbook_url"]

        assert (_REPOSITORY / url).is_file(), name
        assert (_REPOSITORY / url).resolve() == (RUNBOOKS_DIR / f"{name}.md").resolve()


def test_no_runbook_is_left_without_an_alert() -> None:
    """Each runbook file belongs to an alert the rules define."""
    runbooks = {path.stem for path in RUNBOOKS_DIR.glob("*.md")}

    assert runbooks == set(alert_names())


def test_links_between_runbooks_resolve() -> None:
    """A relative link from one runbook to another names an existing file."""
    for path in RUNBOOKS_DIR.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", path.read_text()):
            assert (path.parent / target).is_file(), f"{path.name} -> {target}"


def test_runbooks_show_promql_for_the_recorded_series() -> None:
    """Each runbook's checks include PromQL naming the job it alerts on."""
    for path in RUNBOOKS_DIR.glob("*.md"):
        text = path.read_text()

        assert "```promql" in text, path.name
        assert 'job="building-directory"' in text, path.name
