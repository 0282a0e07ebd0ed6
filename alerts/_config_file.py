"""Read a rule configuration from YAML, and write one back.

:func:`load_config` reads a file on top of a profile; every key it does not
know is an error naming the key, so a typo never passes silently.
:func:`render_config` writes every setting, defaults included, in the same
format: the output of ``bdobs alerts config`` is a starting point for a file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import yaml

from alerts.config import (
    DEFAULT_CONFIG,
    SEVERITIES,
    AlertOverride,
    AlertSettings,
    PrometheusRuleMeta,
    RuleConfig,
)
from alerts.errors import ConfigError

_TOP_KEYS: Final = tuple(f.name for f in dataclasses.fields(RuleConfig))
_OVERRIDE_KEYS: Final = {
    "threshold": "threshold",
    "for": "for_",
    "severity": "severity",
    "long_window": "long_window",
    "short_window": "short_window",
}
_META_KEYS: Final = ("name", "namespace", "labels")


def load_config(path: Path, *, base: RuleConfig = DEFAULT_CONFIG) -> RuleConfig:
    """Read a YAML configuration file on top of ``base``.

    Only the keys the file names change; alert overrides merge per alert and
    per field with those of ``base``.

    Args:
        path: The YAML file.
        base: What the file overrides: a profile, usually.

    Raises:
        ConfigError: The file cannot be read or parsed, holds an unknown key,
            or a value of the wrong kind.
    """
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from error
    try:
        return config_from_mapping(data or {}, base=base)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def config_from_mapping(
    data: object, *, base: RuleConfig = DEFAULT_CONFIG
) -> RuleConfig:
    """Build a configuration from a parsed YAML mapping on top of ``base``.

    Raises:
        ConfigError: An unknown key or a value of the wrong kind.
    """
    mapping = _mapping(data, "the configuration")
    _reject_unknown(mapping, _TOP_KEYS, "")
    changes: dict[str, Any] = {}
    for key, value in mapping.items():
        if key == "alerts":
            continue
        if key == "prometheus_rule":
            changes[key] = _prometheus_rule(value, base.prometheus_rule)
        elif key in ("severity_names", "extra_labels"):
            changes[key] = _string_mapping(value, key)
        elif key == "aggregation_labels":
            changes[key] = None if value is None else _string_tuple(value, key)
        elif key == "min_events":
            changes[key] = _typed(value, int, key)
        elif key == "error_budget":
            changes[key] = float(_typed(value, (int, float), key))
        elif key in ("namespace", "evaluation_interval"):
            changes[key] = None if value is None else _typed(value, str, key)
        else:
            changes[key] = _typed(value, str, key)
    try:
        config = dataclasses.replace(base, **changes)
        alerts = _alert_overrides(mapping.get("alerts") or {})
        return config.with_overrides(alerts)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error)) from error


def _alert_overrides(data: object) -> dict[str, AlertOverride]:
    overrides = {}
    for name, value in _mapping(data, "alerts").items():
        fields = _mapping(value, f"alerts.{name}")
        _reject_unknown(fields, tuple(_OVERRIDE_KEYS), f"alerts.{name}.")
        kwargs: dict[str, Any] = {}
        for key, attribute in _OVERRIDE_KEYS.items():
            if key not in fields:
                continue
            where = f"alerts.{name}.{key}"
            if key == "threshold":
                kwargs[attribute] = float(_typed(fields[key], (int, float), where))
            else:
                kwargs[attribute] = _typed(fields[key], str, where)
        overrides[str(name)] = AlertOverride(**kwargs)
    return overrides


def _prometheus_rule(data: object, base: PrometheusRuleMeta) -> PrometheusRuleMeta:
    fields = _mapping(data, "prometheus_rule")
    _reject_unknown(fields, _META_KEYS, "prometheus_rule.")
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if key == "labels":
            changes[key] = _string_mapping(value, "prometheus_rule.labels")
        else:
            changes[key] = _typed(value, str, f"prometheus_rule.{key}")
    return dataclasses.replace(base, **changes)


def _mapping(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    return {str(key): value for key, value in data.items()}


def _reject_unknown(
    data: Mapping[str, Any], known: tuple[str, ...], where: str
) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {', '.join(where + k for k in unknown)}; "
            f"known: {', '.join(known)}"
        )


def _typed(value: object, kind: type | tuple[type, ...], where: str) -> Any:
    # bool is an int in Python; 'min_events: yes' is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, kind):
        names = (
            kind.__name__
            if isinstance(kind, type)
            else " or ".join(k.__name__ for k in kind)
        )
        raise ConfigError(f"{where}: expected {names}, got {value!r}")
    return value


def _string_mapping(value: object, where: str) -> dict[str, str]:
    mapping = _mapping(value or {}, where)
    return {key: _typed(item, str, f"{where}.{key}") for key, item in mapping.items()}


def _string_tuple(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of label names")
    return tuple(_typed(item, str, where) for item in value)


def render_config(config: RuleConfig) -> str:
    """Render a configuration as the YAML :func:`load_config` reads.

    Every field is written, each alert with its merged settings, so the output
    documents the effective values.
    """
    data: dict[str, Any] = {}
    for key in _TOP_KEYS:
        value = getattr(config, key)
        if key == "alerts":
            value = {
                name: _settings_dict(settings)
                for name, settings in config.alert_settings().items()
            }
        elif key == "prometheus_rule":
            value = {
                "name": value.name,
                "namespace": value.namespace,
                "labels": dict(value.labels),
            }
        elif key == "aggregation_labels":
            # None means "job, plus namespace when set": keep it so, or a
            # namespace added later would miss from an explicit list.
            value = None if value is None else list(value)
        elif key == "severity_names":
            value = {s: config.severity_name(s) for s in SEVERITIES}
        elif isinstance(value, Mapping):
            value = dict(value)
        data[key] = value
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)


def _settings_dict(settings: AlertSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if settings.threshold is not None:
        out["threshold"] = settings.threshold
    out["for"] = settings.for_
    out["severity"] = settings.severity
    if settings.long_window is not None:
        out["long_window"] = settings.long_window
        out["short_window"] = settings.short_window
    return out
