"""Load Sigma rules from files, folders and the bundled default, and compile them.

A rule that cannot be used is reported with its file and the reason; the
other rules still load.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.modifiers import SigmaWideModifier, modifier_mapping, reverse_modifier_mapping
from sigma.exceptions import SigmaRuleLocation
from sigma.rule import SigmaRule
from sigma.rule.base import SigmaYAMLLoader

from enricher.attack import threat_from_tags
from enricher.rules.compiler import Placeholders, Predicate, RuleCompileError, compile_rule
from enricher.rules.prefilter import required_literals

logger = logging.getLogger(__name__)

# The Sigma specification names "utf16le" as an alias of "wide"; pySigma 1.x
# lacks the alias and would reject such rules as using an unknown modifier.
modifier_mapping.setdefault("utf16le", SigmaWideModifier)
reverse_modifier_mapping.setdefault(SigmaWideModifier.__name__, "wide")

BUNDLED_RULE_FILE = "proc_creation_win_wmi_backdoor_exchange_transport_agent.yml"
RULE_SUFFIXES = (".yml", ".yaml")
SIGMA_RULES_LICENSE = "DRL-1.1"


@dataclass(frozen=True)
class CompiledRule:
    """A Sigma rule ready to run, with the fields alerts copy from it."""

    id: str
    title: str
    predicate: Predicate
    source: str
    level: str | None
    status: str | None
    logsource: dict[str, str]
    alert_rule: dict[str, Any]
    alert_sigma: dict[str, Any]
    threat: dict[str, Any] | None
    tags: list[str]
    # Groups of (Sigma field, case-folded literal) pairs: every matching event
    # contains a literal of each group. Empty when the rule must run on every
    # event.
    required_literals: tuple[frozenset[tuple[str, str]], ...] = ()


@dataclass(frozen=True)
class RuleError:
    """A rule file, or one rule in it, that could not be used."""

    source: str
    reason: str
    rule_id: str | None = None


@dataclass
class RuleSet:
    rules: list[CompiledRule] = field(default_factory=list)
    errors: list[RuleError] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def bundled_rule_path() -> Path:
    return Path(str(resources.files("enricher.rules").joinpath("bundled", BUNDLED_RULE_FILE)))


class PlaceholderConfigError(ValueError):
    """A placeholders file that cannot be used."""


def load_placeholders(path: Path | None) -> dict[str, list[str]]:
    """Read ``placeholders: {name: [value, ...]}`` from YAML; the values ``%name%`` expands to."""
    if path is None:
        return {}
    try:
        document = yaml.safe_load(Path(path).read_text("utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise PlaceholderConfigError(f"cannot read placeholders file {path}: {error}") from error
    table = document.get("placeholders") if isinstance(document, dict) else None
    if not isinstance(table, dict):
        raise PlaceholderConfigError(f"placeholders file {path} needs a top-level 'placeholders' map")
    placeholders = {}
    for name, values in table.items():
        values = values if isinstance(values, list) else [values]
        if not values or not all(isinstance(value, (str, int)) for value in values):
            raise PlaceholderConfigError(f"placeholder {name!r} in {path} needs a list of strings")
        placeholders[str(name)] = [str(value) for value in values]
    return placeholders


def load_rules(
    paths: Iterable[str | Path] = (),
    include_default: bool | None = None,
    placeholders: Placeholders | None = None,
) -> RuleSet:
    """Load and compile rules from ``paths`` (files or folders, searched recursively).

    With no paths the bundled default rule loads. ``include_default`` forces it
    in or out.
    """
    paths = [Path(path) for path in paths]
    if include_default is None:
        include_default = not paths

    files: list[Path] = []
    result = RuleSet()
    if include_default:
        files.append(bundled_rule_path())
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            result.errors.append(RuleError(str(path), "no such file or folder"))

    seen_ids: dict[str, str] = {}
    for file in files:
        result.sources.append(str(file))
        for rule_or_error in _load_file(file, placeholders or {}):
            if isinstance(rule_or_error, RuleError):
                result.errors.append(rule_or_error)
                continue
            earlier = seen_ids.get(rule_or_error.id)
            if earlier is not None:
                result.errors.append(
                    RuleError(str(file), f"duplicate rule id, already loaded from {earlier}", rule_or_error.id)
                )
                continue
            seen_ids[rule_or_error.id] = str(file)
            result.rules.append(rule_or_error)

    for error in result.errors:
        logger.warning("rule not loaded: %s%s: %s", error.source, f" ({error.rule_id})" if error.rule_id else "", error.reason)
    logger.info("loaded %d Sigma rules from %d files, %d rejected", len(result.rules), len(files), len(result.errors))
    return result


def _load_file(file: Path, placeholders: Placeholders) -> list[CompiledRule | RuleError]:
    source = str(file)
    try:
        text = file.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [RuleError(source, f"cannot read file: {error}")]
    try:
        # pySigma's own YAML loader: libyaml (C) with its duplicate-key check.
        # SigmaCollection.from_yaml would read with PyYAML's pure-Python
        # loader, several times slower on a thousand rules.
        documents = list(yaml.load_all(text, Loader=SigmaYAMLLoader))
        collection = SigmaCollection.from_dicts(documents, collect_errors=True, source=SigmaRuleLocation(file))
    except yaml.YAMLError as error:
        return [RuleError(source, f"invalid YAML: {error}")]
    except SigmaError as error:
        return [RuleError(source, f"invalid Sigma rule: {_error_text(error)}")]
    except Exception as error:  # noqa: BLE001
        # pySigma raises plain Python errors on some malformed files, such as
        # an integer id or a list where a map belongs. One bad file must not
        # stop the others from loading.
        return [RuleError(source, f"invalid Sigma rule: {type(error).__name__}: {error}")]

    loaded: list[CompiledRule | RuleError] = []
    for rule in collection.rules:
        rule_id = str(rule.id) if getattr(rule, "id", None) else None
        if not isinstance(rule, SigmaRule):
            loaded.append(RuleError(source, f"{type(rule).__name__} is not supported, only detection rules", rule_id))
            continue
        if rule.errors:
            reasons = "; ".join(_error_text(error) for error in rule.errors)
            loaded.append(RuleError(source, reasons, rule_id))
            continue
        if rule_id is None:
            loaded.append(RuleError(source, "the rule has no id", None))
            continue
        try:
            predicate = compile_rule(rule, placeholders)
        except (RuleCompileError, SigmaError) as error:
            loaded.append(RuleError(source, _error_text(error), rule_id))
            continue
        compiled = _compiled(rule, rule_id, predicate, source)
        loaded.append(replace(compiled, required_literals=required_literals(rule, placeholders)))
    if not loaded:
        loaded.append(RuleError(source, "the file contains no Sigma rule"))
    return loaded


def _error_text(error: BaseException) -> str:
    text = str(error)
    # pySigma appends the location, which the report already names.
    return text.split(" in ", 1)[0] if isinstance(error, SigmaError) and " in " in text else text


def _compiled(rule: SigmaRule, rule_id: str, predicate: Predicate, source: str) -> CompiledRule:
    tags = [str(tag) for tag in rule.tags]
    logsource = {
        key: value
        for key, value in (
            ("category", rule.logsource.category),
            ("product", rule.logsource.product),
            ("service", rule.logsource.service),
        )
        if value
    }
    authors = [author.strip() for author in (rule.author or "").split(",") if author.strip()]
    modified = rule.modified or rule.date
    references = list(rule.references or [])
    alert_rule: dict[str, Any] = {
        "id": rule_id,
        "uuid": rule_id,
        "name": rule.title,
        "description": rule.description or "",
        "author": authors,
        "ruleset": "sigma",
        "category": logsource.get("category") or logsource.get("service") or logsource.get("product", ""),
        "license": SIGMA_RULES_LICENSE,
    }
    if references:
        alert_rule["reference"] = references[0]
    if modified:
        alert_rule["version"] = _date_text(modified)
    level = rule.level.name.lower() if rule.level else None
    status = rule.status.name.lower() if rule.status else None
    alert_sigma: dict[str, Any] = {
        "level": level,
        "status": status,
        "references": references,
        "tags": tags,
        "logsource": logsource,
        "falsepositives": list(rule.falsepositives or []),
    }
    if rule.date:
        alert_sigma["date"] = _date_text(rule.date)
    if rule.modified:
        alert_sigma["modified"] = _date_text(rule.modified)
    return CompiledRule(
        id=rule_id,
        title=rule.title,
        predicate=predicate,
        source=source,
        level=level,
        status=status,
        logsource=logsource,
        alert_rule=alert_rule,
        alert_sigma={key: value for key, value in alert_sigma.items() if value not in (None, [], {})},
        threat=threat_from_tags(tags, rule_id),
        tags=tags,
    )


def _date_text(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)
