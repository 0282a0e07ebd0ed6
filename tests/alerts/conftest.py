"""Fixtures of the alerts tests: built rules, a unit-test folder, a Prometheus."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts import UNIT_TESTS_DIR, build_rules, render_rules
from loadtests.servers import PrometheusServer


@pytest.fixture(scope="session")
def default_rules() -> dict[str, Any]:
    """The rule file's content for the default configuration."""
    return build_rules()


@pytest.fixture(scope="session")
def alerts_by_name(default_rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The default alerting rules, by alert name."""
    return {
        rule["alert"]: rule
        for group in default_rules["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


@pytest.fixture
def unit_test_dir(tmp_path: Path) -> Path:
    """A folder holding the shipped promtool unit tests and no rule file yet."""
    folder = tmp_path / "unit"
    folder.mkdir()
    for source in sorted(UNIT_TESTS_DIR.glob("*.test.yml")):
        shutil.copyfile(source, folder / source.name)
    return folder


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus with no targets, loading rules/*.yml, reloadable."""
    server = PrometheusServer(tmp_path / "prometheus", evaluation_interval="1s")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def default_rules_text() -> str:
    """The default rule file, as written by the build."""
    return render_rules()


#: A rule file that promtool rejects: an expression that does not parse.
BROKEN_RULES = """\
groups:
  - name: building-directory.broken
    rules:
      - record: job:broken:sum
        expr: sum(rate(building_directory_requests_total[5m])
"""


@pytest.fixture
def broken_rules_text() -> str:
    """A rule file whose expression does not parse."""
    return BROKEN_RULES
