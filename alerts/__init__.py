"""Prometheus recording and alert rules for the Building Directory client.

The rules are built from the indicator catalogue
(:mod:`instrumentation.indicators`), so the alerts, the dashboards and the
load-test verdict measure the same things the same way. A frozen
:class:`RuleConfig` holds everything a user tunes (selectors, windows,
thresholds, severities, runbook address); :data:`PROFILES` names the shipped
``default`` and ``demo`` ones.

Targets and alert thresholds differ on purpose: targets are what a healthy
release shows (the load test checks them), alerts are what is worth waking
someone for.

Example:
    >>> from alerts import DEMO_CONFIG, render_rules
    >>> text = render_rules(DEMO_CONFIG)
    >>> text.count("- alert:")
    9
"""

from alerts._config_file import config_from_mapping, load_config, render_config
from alerts.checks import (
    ALERTMANAGER_EXAMPLE,
    RUNBOOKS_DIR,
    UNIT_TESTS_DIR,
    CheckResult,
    check,
    unit_test_files,
)
from alerts.config import (
    BURN_FAST,
    BURN_SLOW,
    DEFAULT_CONFIG,
    DEFAULT_RUNBOOK_BASE,
    DEMO_CONFIG,
    METRICS_ABSENT,
    PROFILES,
    TARGET_DOWN,
    AlertOverride,
    AlertSettings,
    PrometheusRuleMeta,
    RuleConfig,
)
from alerts.errors import (
    AlertsError,
    CheckFailedError,
    ConfigError,
    LoadError,
    ReloadError,
    RulesNotLoadedError,
    ToolMissingError,
)
from alerts.loader import LoadReport, load_rules
from alerts.promtool import (
    check_alertmanager_config,
    check_rules,
    find_tool,
    route_receivers,
    test_rules,
)
from alerts.rules import (
    PROMETHEUS_RULE_FILENAME,
    RULES_FILENAME,
    alert_names,
    build,
    build_prometheus_rule,
    build_rules,
    group_names,
    record_name,
    render_prometheus_rule,
    render_rules,
    runbook_url,
)

__all__ = [
    "ALERTMANAGER_EXAMPLE",
    "BURN_FAST",
    "BURN_SLOW",
    "DEFAULT_CONFIG",
    "DEFAULT_RUNBOOK_BASE",
    "DEMO_CONFIG",
    "METRICS_ABSENT",
    "PROFILES",
    "PROMETHEUS_RULE_FILENAME",
    "RULES_FILENAME",
    "RUNBOOKS_DIR",
    "TARGET_DOWN",
    "UNIT_TESTS_DIR",
    "AlertOverride",
    "AlertSettings",
    "AlertsError",
    "CheckFailedError",
    "CheckResult",
    "ConfigError",
    "LoadError",
    "LoadReport",
    "PrometheusRuleMeta",
    "ReloadError",
    "RuleConfig",
    "RulesNotLoadedError",
    "ToolMissingError",
    "alert_names",
    "build",
    "build_prometheus_rule",
    "build_rules",
    "check",
    "check_alertmanager_config",
    "check_rules",
    "config_from_mapping",
    "find_tool",
    "group_names",
    "load_config",
    "load_rules",
    "record_name",
    "render_config",
    "render_prometheus_rule",
    "render_rules",
    "route_receivers",
    "runbook_url",
    "test_rules",
    "unit_test_files",
]
