"""``bdobs alerts``: build, check, load and config from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerts import (
    PROMETHEUS_RULE_FILENAME,
    RULES_FILENAME,
    load_config,
    render_rules,
)
from bdobs.cli import main
from loadtests.servers import PrometheusServer


def test_alerts_is_a_bdobs_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    """``bdobs --help`` lists the alerts commands."""
    with pytest.raises(SystemExit):
        main(["alerts", "--help"])

    out = capsys.readouterr().out
    assert all(command in out for command in ("build", "check", "load", "config"))


def test_build_writes_the_rule_file_and_the_prometheus_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``alerts build --out DIR`` writes both files, the same bytes as the API."""
    code = main(["alerts", "build", "--out", str(tmp_path)])

    assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [RULES_FILENAME, PROMETHEUS_RULE_FILENAME]
    )
    assert (tmp_path / RULES_FILENAME).read_text() == render_rules()
    assert capsys.readouterr().out.count("wrote ") == 2


def test_build_applies_a_config_file_on_top_of_a_profile(tmp_path: Path) -> None:
    """--profile demo --config FILE: the demo's windows, the file's threshold."""
    config = tmp_path / "rules.yml"
    config.write_text("alerts:\n  BuildingCacheHitRateLow: {threshold: 0.25}\n")

    main(
        [
            "alerts",
            "build",
            "--out",
            str(tmp_path / "out"),
            "--profile",
            "demo",
            "--config",
            str(config),
        ]
    )

    text = (tmp_path / "out" / RULES_FILENAME).read_text()
    assert "ratio_rate1m{job=" in text
    assert "< 0.25\n" in text


def test_build_rejects_an_unknown_config_key_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A misspelt key exits 2 naming it; no file is written."""
    config = tmp_path / "rules.yml"
    config.write_text("min_event: 5\n")

    code = main(
        ["alerts", "build", "--out", str(tmp_path / "out"), "--config", str(config)]
    )

    assert code == 2
    assert "min_event" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_check_passes_on_the_shipped_rules(capsys: pytest.CaptureFixture[str]) -> None:
    """``alerts check`` runs promtool, the unit tests, amtool and the runbooks."""
    code = main(["alerts", "check"])

    out = capsys.readouterr().out
    assert code == 0
    assert "promtool check rules" in out
    assert "promtool test rules" in out
    assert "amtool check-config" in out
    assert "4 passed, 0 failed" in out


def test_check_fails_on_a_broken_rule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken_rules_text: str
) -> None:
    """``alerts check --rules FILE`` exits 1 and shows promtool's complaint."""
    rules = tmp_path / "broken.yml"
    rules.write_text(broken_rules_text)

    code = main(["alerts", "check", "--rules", str(rules)])

    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED promtool check rules" in out
    assert "could not parse expression" in out


def test_check_with_a_tuned_config_runs_the_unit_tests_on_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A tuned threshold is checked by promtool; the unit tests pin the defaults."""
    config = tmp_path / "rules.yml"
    config.write_text("alerts:\n  BuildingCacheHitRateLow: {threshold: 0.4}\n")

    code = main(["alerts", "check", "--config", str(config)])

    assert code == 0
    assert "shipped tests, default configuration" in capsys.readouterr().out


def test_load_puts_rules_into_a_running_prometheus(
    prometheus: PrometheusServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``alerts load`` validates, replaces, reloads and reports the groups."""
    code = main(
        [
            "alerts",
            "load",
            "--prometheus-url",
            prometheus.url,
            "--rules-dir",
            str(prometheus.rules_dir),
            "--profile",
            "demo",
        ]
    )

    out = capsys.readouterr().out
    assert code == 0
    assert "loaded " in out
    assert "building-directory.alerts" in out


def test_load_of_a_broken_file_exits_1_and_keeps_the_live_one(
    prometheus: PrometheusServer,
    tmp_path: Path,
    broken_rules_text: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``alerts load --rules BROKEN`` fails and the live rules stay."""
    main(
        [
            "alerts",
            "load",
            "--prometheus-url",
            prometheus.url,
            "--rules-dir",
            str(prometheus.rules_dir),
        ]
    )
    broken = tmp_path / "broken.yml"
    broken.write_text(broken_rules_text)

    code = main(
        [
            "alerts",
            "load",
            "--prometheus-url",
            prometheus.url,
            "--rules-dir",
            str(prometheus.rules_dir),
            "--rules",
            str(broken),
        ]
    )

    assert code == 1
    assert "error: promtool check rules failed" in capsys.readouterr().err
    assert (prometheus.rules_dir / RULES_FILENAME).read_text() == render_rules()


def test_config_prints_every_setting_in_the_format_config_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``alerts config`` output is a valid --config file of the same settings."""
    code = main(["alerts", "config", "--profile", "demo"])

    out = capsys.readouterr().out
    path = tmp_path / "printed.yml"
    path.write_text(out)
    assert code == 0
    assert "BuildingDirectoryTargetDown" in yaml.safe_load(out)["alerts"]
    assert load_config(path).window == "1m"
