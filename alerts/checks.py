"""Every check of the rules in one call: promtool, the unit tests, amtool, runbooks.

:func:`check` builds the rule file (or takes one), then runs
``promtool check rules``, the ``promtool test rules`` unit tests shipped in
``alerts/tests/``, ``amtool check-config`` on the example Alertmanager
configuration and a look for each alert's runbook. It reports each check
rather than stopping at the first failure.

The shipped unit tests pin the default configuration's thresholds, windows and
texts. They run against the checked file when it is built from the default
configuration or given as a file; a file built from another configuration
gets its syntax checked, and the unit tests run against a default build beside
it (pass your own tests, written for your configuration, to test it instead).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml

from alerts.config import DEFAULT_CONFIG, RuleConfig
from alerts.errors import AlertsError, CheckFailedError
from alerts.promtool import check_alertmanager_config, check_rules, test_rules
from alerts.rules import RULES_FILENAME, render_rules

_PACKAGE: Final = Path(__file__).resolve().parent

#: The ``promtool test rules`` files, one per alert.
UNIT_TESTS_DIR: Final = _PACKAGE / "tests"
#: One Markdown runbook per alert, named ``<AlertName>.md``.
RUNBOOKS_DIR: Final = _PACKAGE / "runbooks"
#: The example Alertmanager configuration, routing by severity.
ALERTMANAGER_EXAMPLE: Final = _PACKAGE / "alertmanager" / "alertmanager.yml"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: What was checked, for the summary line.
        passed: Whether it passed.
        messages: The problems found, one per entry; empty when it passed.
    """

    name: str
    passed: bool
    messages: tuple[str, ...] = ()


def unit_test_files(folder: Path = UNIT_TESTS_DIR) -> list[Path]:
    """Return the ``promtool test rules`` files (``*.test.yml``) of a folder."""
    return sorted(folder.glob("*.test.yml"))


def check(
    config: RuleConfig = DEFAULT_CONFIG,
    *,
    rules: Path | None = None,
    tests: Path | None = None,
    alertmanager_config: Path = ALERTMANAGER_EXAMPLE,
) -> list[CheckResult]:
    """Run every check and return one result per check, in order.

    Args:
        config: What to build the rules from, unless ``rules`` is given.
        rules: An existing rule file to check instead of a fresh build.
        tests: A folder of ``promtool test rules`` files (``*.test.yml``) to
            run instead of the shipped ones; they name the rule file
            ``building-directory.rules.yml``, found beside them.
        alertmanager_config: The Alertmanager configuration for amtool.
    """
    with tempfile.TemporaryDirectory(prefix="bdobs-alerts-") as tmp:
        workdir = Path(tmp)
        if rules is None:
            text = render_rules(config)
            label = RULES_FILENAME
        else:
            text = rules.read_text(encoding="utf-8")
            label = str(rules)
        checked = workdir / RULES_FILENAME
        checked.write_text(text, encoding="utf-8")

        results = [_run(f"promtool check rules {label}", lambda: check_rules(checked))]

        tests_text, tests_name = text, f"promtool test rules against {label}"
        if tests is None and rules is None and config != DEFAULT_CONFIG:
            tests_text = render_rules(DEFAULT_CONFIG)
            tests_name = "promtool test rules (shipped tests, default configuration)"
        unit = workdir / "unit"
        unit.mkdir()
        (unit / RULES_FILENAME).write_text(tests_text, encoding="utf-8")
        test_files = []
        for source in unit_test_files(tests or UNIT_TESTS_DIR):
            test_files.append(unit / source.name)
            shutil.copyfile(source, unit / source.name)
        results.append(_unit_tests(tests_name, test_files))

        results.append(
            _run(
                f"amtool check-config {alertmanager_config}",
                lambda: check_alertmanager_config(alertmanager_config),
            )
        )
        results.append(_runbooks(text))
    return results


def _run(name: str, action: Callable[[], None]) -> CheckResult:
    try:
        action()
    except CheckFailedError as error:
        return CheckResult(name, False, error.messages)
    except AlertsError as error:
        return CheckResult(name, False, (str(error),))
    return CheckResult(name, True)


def _unit_tests(name: str, files: list[Path]) -> CheckResult:
    if not files:
        return CheckResult(name, False, ("no test files found",))
    return _run(f"{name} ({len(files)} files)", lambda: test_rules(*files))


def _runbooks(text: str) -> CheckResult:
    """Check that every alert of the rule file has a runbook."""
    name = f"runbooks in {RUNBOOKS_DIR}"
    try:
        groups = (yaml.safe_load(text) or {}).get("groups") or []
        alerts = [r["alert"] for g in groups for r in g["rules"] if "alert" in r]
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as error:
        return CheckResult(name, False, (f"cannot read the rule file: {error}",))
    missing = [
        f"{alert}: no {alert}.md"
        for alert in alerts
        if not (RUNBOOKS_DIR / f"{alert}.md").is_file()
    ]
    return CheckResult(name, not missing, tuple(missing))
