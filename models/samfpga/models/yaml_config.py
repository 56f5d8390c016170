"""Configuration files: a YAML mapping plus ``key=value`` overrides, read into a plain dict that a config
dataclass's ``from_dict`` then checks (the image, video and proposal trainers all read theirs this way), and that
check of the keys itself (``check_fields``, used by every config dataclass's ``from_dict``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: str | Path | None, overrides: list[str] | None, what: str, nested: bool = False
                 ) -> dict[str, Any]:
    """The YAML mapping in ``path`` (None: empty) with ``overrides`` (``key=value``, values parsed as YAML)
    applied. ``nested``: a dotted key sets a field of a sub-mapping (``data.workers=4``); else keys are taken as
    they are. ``what`` names the file in errors ("training config", ...)."""
    d: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{what} {path}: no such file")
        d = yaml.safe_load(path.read_text()) or {}
        if not isinstance(d, dict):
            raise ValueError(f"{what} {path}: expected a mapping at top level")
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        node, parts = d, key.split(".") if nested else [key]
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return d


def check_fields(cls: type, keys: Iterable[str], what: str) -> None:
    """Refuse ``keys`` that are not fields of dataclass ``cls``: ``ValueError("unknown <what>: [sorted keys]")``."""
    unknown = set(keys) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what}: {sorted(unknown)}")
