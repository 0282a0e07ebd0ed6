"""The example Alertmanager configuration: valid, and routing by severity."""

from __future__ import annotations

import re

import pytest
import yaml

from alerts import (
    ALERTMANAGER_EXAMPLE,
    DEFAULT_CONFIG,
    alert_names,
    check_alertmanager_config,
    route_receivers,
)
from alerts.config import Severity


def test_example_passes_amtool_check_config() -> None:
    """amtool check-config accepts the example."""
    check_alertmanager_config(ALERTMANAGER_EXAMPLE)


@pytest.mark.parametrize(
    ("severity", "receiver"),
    [
        pytest.param("critical", "page", id="critical-pages"),
        pytest.param("warning", "ticket", id="warning-tickets"),
        pytest.param("info", "null", id="info-goes-nowhere"),
    ],
)
def test_example_routes_each_severity_to_its_receiver(
    severity: Severity, receiver: str
) -> None:
    """amtool's route test sends each default severity name to its receiver."""
    labels = {
        "alertname": "BuildingDirectoryErrorRateHigh",
        "job": "building-directory",
        DEFAULT_CONFIG.severity_label: DEFAULT_CONFIG.severity_name(severity),
    }

    assert route_receivers(ALERTMANAGER_EXAMPLE, labels) == [receiver]


def test_inhibit_rules_name_alerts_that_exist() -> None:
    """Every alert name in an inhibit rule is one the rules define."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())
    matchers = [
        matcher
        for rule in config["inhibit_rules"]
        for matcher in (*rule["source_matchers"], *rule["target_matchers"])
    ]

    names = set(re.findall(r'^alertname="(\w+)"$', "\n".join(matchers), re.M))

    assert len(matchers) == len(names) == 6
    assert names <= set(alert_names())


def test_example_sends_nothing_anywhere_until_filled_in() -> None:
    """The receivers carry no integration: no address is contacted by default."""
    config = yaml.safe_load(ALERTMANAGER_EXAMPLE.read_text())

    assert [set(r) for r in config["receivers"]] == [{"name"}] * 3
