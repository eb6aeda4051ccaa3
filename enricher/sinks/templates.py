"""Index templates for the alerts index, one per engine, from the ``mappings/`` folder."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import orjson


def mappings_dir() -> Path:
    """Return the folder with the templates: inside the installed package, or the source tree."""
    packaged = Path(str(resources.files("enricher"))) / "mappings"
    if packaged.is_dir():
        return packaged
    # Editable installs and source checkouts keep mappings/ beside the package.
    return Path(__file__).resolve().parents[2] / "mappings"


@lru_cache(maxsize=4)
def _template_file(distribution: str) -> dict[str, Any]:
    engine = "opensearch" if distribution == "opensearch" else "elasticsearch"
    return orjson.loads((mappings_dir() / f"alerts-template.{engine}.json").read_bytes())


def load_template(distribution: str, alerts_index: str, lifecycle: str | None = None) -> dict[str, Any]:
    """Return the alerts template for the engine, its pattern set to the alerts index name.

    With ``lifecycle`` ("ilm" or "ism") the indices get the policy named
    after the alerts index and its rollover alias. ``_meta.fingerprint``
    identifies the content, so an installed template can be compared.
    """
    template = orjson.loads(orjson.dumps(_template_file(distribution)))
    template["index_patterns"] = [f"{alerts_index}*"]
    settings = template["template"].setdefault("settings", {}).setdefault("index", {})
    if lifecycle == "ilm":
        settings["lifecycle"] = {"name": alerts_index, "rollover_alias": alerts_index}
    elif lifecycle == "ism":
        template["template"]["settings"]["plugins.index_state_management.rollover_alias"] = alerts_index
    template.setdefault("_meta", {})["fingerprint"] = hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return template
