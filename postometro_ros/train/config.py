# Copyright 2026 The postometro_ros Authors. Licensed under the Apache License 2.0.
"""Typed dataclass configs <-> YAML, with ``--set a.b=value`` overrides; unknown keys fail."""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = ['from_dict', 'to_dict', 'apply_overrides', 'load_yaml', 'save_yaml']

T = TypeVar('T')


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f'{where}: expected a mapping for {hint.__name__}, got {value!r}')
        return from_dict(hint, value, where=where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f'{where}: expected a list, got {value!r}')
        item = args[0] if args else Any
        return tuple(_convert(v, item, where) for v in value)
    if origin is list:
        return [_convert(v, args[0] if args else Any, where) for v in value]
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ValueError(f'{where}: expected {hint.__name__}, got {value!r}')
    return value


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = '') -> T:
    """Build dataclass ``cls`` from a (nested) mapping, checking names and types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f'{where or cls.__name__}: unknown key(s) {unknown}; '
                         f'valid keys are {sorted(names)}')
    kwargs = {k: _convert(v, hints[k], f'{where}.{k}' if where else k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict of YAML-safe values (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return plain(dataclasses.asdict(cfg))


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if '=' not in item:
            raise ValueError(f'override {item!r} must look like key.sub=value')
        key, raw = item.split('=', 1)
        node = data
        parts = key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f) or {}


def save_yaml(data: dict[str, Any], path: str | Path) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(data, f, sort_keys=False)
