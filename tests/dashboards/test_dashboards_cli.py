"""``bdobs dashboards`` and grafanalib's own ``generate-dashboard``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bdobs.cli import main
from dashboards import OVERVIEW_UID, overview, render
from dashboards._compat import modernize

_REPOSITORY = Path(__file__).resolve().parents[2]
_GENERATE_DASHBOARD = Path(sys.executable).with_name("generate-dashboard")


def test_build_command_writes_dashboards_and_provisioning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bdobs dashboards build --out DIR`` writes the three files and says so."""
    code = main(["dashboards", "build", "--out", str(tmp_path)])

    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.*"))
    assert code == 0
    assert written == [
        f"dashboards/{OVERVIEW_UID}.json",
        "provisioning/dashboards/building-directory.yml",
        "provisioning/datasources/prometheus.yml",
    ]
    assert capsys.readouterr().out.count("wrote ") == 3


def test_build_command_passes_the_runbook_base_to_the_links(tmp_path: Path) -> None:
    """--runbook-base changes where every runbook link points."""
    base = "https://git.example.org/bundle/blob/main/alerts/runbooks"

    main(["dashboards", "build", "--out", str(tmp_path), "--runbook-base", base])

    dashboard = json.loads(
        (tmp_path / "dashboards" / f"{OVERVIEW_UID}.json").read_text()
    )
    assert all(link["url"].startswith(f"{base}/") for link in dashboard["links"])


def test_check_command_runs_every_offline_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``bdobs dashboards check`` lints, decodes and parses, and passes."""
    code = main(["dashboards", "check"])

    out = capsys.readouterr().out
    assert code == 0
    assert f"{OVERVIEW_UID}: lint: ok" in out
    assert f"{OVERVIEW_UID}: grafana-foundation-sdk decode: ok" in out
    assert f"{OVERVIEW_UID}: promtool parse: ok" in out


def test_grafanalib_generate_dashboard_builds_the_same_dashboard(
    tmp_path: Path,
) -> None:
    """grafanalib's command reads the source; modernized, it equals the build."""
    out = tmp_path / "overview.json"

    result = subprocess.run(
        [
            str(_GENERATE_DASHBOARD),
            "-o",
            str(out),
            str(_REPOSITORY / "dashboards" / "overview.dashboard.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    raw: dict[str, Any] = json.loads(out.read_text())
    assert raw["schemaVersion"] == 12  # grafanalib's own, unmodernized
    spec = overview()
    assert modernize(raw, spec.datasource) == render(spec)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--scrape-interval", "banana", "not a Prometheus duration"),
        ("--scrape-interval", "0s", "longer than 0"),
        ("--prometheus-url", "ftp://x y", "http:// or https://"),
        ("--prometheus-url", "http://", "with a host"),
    ],
)
def test_build_refuses_values_grafana_could_not_use(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    message: str,
) -> None:
    """A bad data source value is a usage error, and nothing is written."""
    with pytest.raises(SystemExit) as raised:
        main(["dashboards", "build", "--out", str(tmp_path / "out"), option, value])

    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
