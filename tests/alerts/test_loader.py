"""``load_rules`` against a real Prometheus: validate, replace, reload, confirm."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts import (
    DEMO_CONFIG,
    RULES_FILENAME,
    CheckFailedError,
    ReloadError,
    RulesNotLoadedError,
    group_names,
    load_rules,
    render_rules,
)
from loadtests.servers import PrometheusServer, free_port


def _shown_rules(prometheus: PrometheusServer) -> dict[str, list[dict[str, Any]]]:
    response = httpx.get(f"{prometheus.url}/api/v1/rules", timeout=5)
    return {g["name"]: g["rules"] for g in response.json()["data"]["groups"]}


def _definitions(prometheus: PrometheusServer) -> set[tuple[str, str, str]]:
    """What Prometheus runs: (group, rule name, query), without the rule state."""
    return {
        (group, rule["name"], rule["query"])
        for group, rules in _shown_rules(prometheus).items()
        for rule in rules
    }


def _no_validation(path: Path) -> None:
    """Stand in for promtool, so a broken file reaches Prometheus itself."""


def test_load_puts_the_rules_live_and_prometheus_shows_them(
    prometheus: PrometheusServer, default_rules_text: str
) -> None:
    """After a load, /api/v1/rules lists both groups and every rule."""
    report = load_rules(prometheus.url, prometheus.rules_dir, default_rules_text)

    shown = _shown_rules(prometheus)
    assert report.path == prometheus.rules_dir / RULES_FILENAME
    assert report.path.read_text() == default_rules_text
    assert report.backup is None
    assert report.shown_from == ()
    assert report.path.stat().st_mode & 0o777 == 0o644  # readable by Prometheus
    assert list(report.groups) == group_names()
    assert sorted(shown) == sorted(group_names())
    assert sum(len(rules) for rules in shown.values()) == default_rules_text.count(
        "- record:"
    ) + default_rules_text.count("- alert:")
    assert report.seconds < 10


def test_load_replaces_the_previous_rules_and_keeps_a_backup(
    prometheus: PrometheusServer, default_rules_text: str
) -> None:
    """A second load shows the new durations and keeps the old file as .bak."""
    load_rules(prometheus.url, prometheus.rules_dir, default_rules_text)

    report = load_rules(prometheus.url, prometheus.rules_dir, render_rules(DEMO_CONFIG))

    alerts = {
        r["name"]: r for r in _shown_rules(prometheus)["building-directory.alerts"]
    }
    assert alerts["BuildingCacheHitRateLow"]["duration"] == 30
    assert report.backup is not None
    assert report.backup.read_text() == default_rules_text
    assert sorted(p.name for p in prometheus.rules_dir.iterdir()) == [
        RULES_FILENAME,
        f"{RULES_FILENAME}.bak",
    ]


def test_a_broken_rule_file_leaves_the_running_rules_untouched(
    prometheus: PrometheusServer, default_rules_text: str, broken_rules_text: str
) -> None:
    """promtool rejects the file: the live file, and what Prometheus runs, stay."""
    load_rules(prometheus.url, prometheus.rules_dir, default_rules_text)
    before = _definitions(prometheus)

    with pytest.raises(CheckFailedError, match="could not parse expression") as raised:
        load_rules(prometheus.url, prometheus.rules_dir, broken_rules_text)

    assert f"new {RULES_FILENAME}" in raised.value.messages[0]
    assert (prometheus.rules_dir / RULES_FILENAME).read_text() == default_rules_text
    assert sorted(p.name for p in prometheus.rules_dir.iterdir()) == [RULES_FILENAME]
    assert _definitions(prometheus) == before


def test_a_refused_reload_puts_the_previous_file_back(
    prometheus: PrometheusServer, default_rules_text: str, broken_rules_text: str
) -> None:
    """Prometheus answers 500 to a broken file: the good file is restored."""
    load_rules(prometheus.url, prometheus.rules_dir, default_rules_text)
    before = _definitions(prometheus)

    with pytest.raises(ReloadError, match=r"HTTP 500.*restored the previous"):
        load_rules(
            prometheus.url,
            prometheus.rules_dir,
            broken_rules_text,
            validate=_no_validation,
        )

    assert (prometheus.rules_dir / RULES_FILENAME).read_text() == default_rules_text
    assert _definitions(prometheus) == before


def test_a_refused_first_load_leaves_no_rule_file(
    prometheus: PrometheusServer, broken_rules_text: str
) -> None:
    """With no previous file, a refused reload removes the new one again."""
    with pytest.raises(ReloadError, match="no previous file"):
        load_rules(
            prometheus.url,
            prometheus.rules_dir,
            broken_rules_text,
            validate=_no_validation,
        )

    assert list(prometheus.rules_dir.iterdir()) == []
    assert _shown_rules(prometheus) == {}


def test_a_folder_prometheus_does_not_read_times_out_and_is_undone(
    prometheus: PrometheusServer, default_rules_text: str, tmp_path: Path
) -> None:
    """Rules written where Prometheus does not look never show: a clear error."""
    elsewhere = tmp_path / "not-loaded"

    with pytest.raises(RulesNotLoadedError, match="rule_files"):
        load_rules(prometheus.url, elsewhere, default_rules_text, timeout=1.0)

    assert list(elsewhere.iterdir()) == []


def test_a_replaced_file_keeps_the_mode_it_had(
    prometheus: PrometheusServer, default_rules_text: str
) -> None:
    """A file the operator made group-readable only stays so after a load."""
    live = load_rules(prometheus.url, prometheus.rules_dir, default_rules_text).path
    live.chmod(0o640)

    load_rules(prometheus.url, prometheus.rules_dir, render_rules(DEMO_CONFIG))

    assert live.stat().st_mode & 0o777 == 0o640


def test_the_same_rules_read_from_another_folder_are_reported(
    prometheus: PrometheusServer, default_rules_text: str, tmp_path: Path
) -> None:
    """Prometheus showing the groups from another file does not pass silently."""
    load_rules(prometheus.url, prometheus.rules_dir, default_rules_text)
    elsewhere = tmp_path / "not-read"

    report = load_rules(prometheus.url, elsewhere, default_rules_text)

    assert report.shown_from == (str(prometheus.rules_dir / RULES_FILENAME),)


def test_an_unreachable_prometheus_keeps_the_previous_file(
    tmp_path: Path, default_rules_text: str
) -> None:
    """Nothing answering the reload is a ReloadError; the old file comes back."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / RULES_FILENAME).write_text(default_rules_text)
    url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ReloadError, match="cannot reach"):
        load_rules(url, rules_dir, render_rules(DEMO_CONFIG), timeout=1.0)

    assert (rules_dir / RULES_FILENAME).read_text() == default_rules_text


def test_a_disabled_lifecycle_api_is_explained(
    tmp_path: Path, default_rules_text: str
) -> None:
    """A 403 on reload says to start Prometheus with --web.enable-lifecycle."""
    calls: list[str] = []

    def lifecycle_disabled(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        return httpx.Response(403, text="Lifecycle API is not enabled.")

    with pytest.raises(ReloadError, match=r"--web\.enable-lifecycle"):
        load_rules(
            "http://127.0.0.1:9",
            tmp_path,
            default_rules_text,
            transport=httpx.MockTransport(lifecycle_disabled),
        )

    assert calls == ["POST /-/reload", "POST /-/reload"]
    assert list(tmp_path.iterdir()) == []
