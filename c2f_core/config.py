"""Typed configs: dataclasses loaded from YAML with strict validation.

Every component has a dataclass config whose fields carry a one-line docstring. `load_config`
turns a YAML file (or a dict) into that dataclass, rejecting unknown keys and wrong types with a
message that names the dotted key, so a typo never silently falls back to a default. A file may
start from another with `extends: other.yaml` (relative to its own folder) and override keys.
"""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from c2f_core.errors import C2FError

T = TypeVar("T")


def load_config(cls: type[T], source: str | Path | dict[str, Any] | None) -> T:
    """Build the dataclass `cls` from a YAML file path or a dict; `None` gives the defaults."""
    if source is None:
        return cls()
    if isinstance(source, dict):
        data, where = _resolve_extends(dict(source), Path.cwd(), "config", ())
    else:
        data, where = _read_yaml(Path(source), ())
    return _build(cls, data, prefix="", where=where)


def _read_yaml(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], str]:
    """Read one YAML config file, following its `extends:` chain."""
    if not path.is_file():
        raise C2FError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise C2FError(f"config file {path} is not valid YAML: {_yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise C2FError(f"cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(data, dict):
        raise C2FError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return _resolve_extends(data, path.parent, str(path), chain + (path.resolve(),))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: the problem and where it is."""
    problem = getattr(exc, "problem", None)
    mark = getattr(exc, "problem_mark", None)
    if problem is None:
        return " ".join(str(exc).split())
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def _resolve_extends(
    data: dict[str, Any], folder: Path, where: str, chain: tuple[Path, ...]
) -> tuple[dict[str, Any], str]:
    """Merge `data` over the config named by its `extends:` key (a path relative to `folder`)."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data, where
    if not isinstance(base_name, str):
        raise C2FError(f"{where}: 'extends' must be a path string, found {base_name!r}")
    base_path = (folder / base_name).resolve()
    if base_path in chain:
        raise C2FError(f"{where}: 'extends' makes a cycle through {base_path}")
    base, _ = _read_yaml(base_path, chain)
    return _deep_merge(base, data), where


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_to_dict(config: Any) -> dict[str, Any]:
    """Return a plain, YAML-serialisable dict of a config dataclass."""
    return _plain(dataclasses.asdict(config))


def first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    """Dotted key of the first value that differs between two plain (nested) dicts, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            found = first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if found:
                return found
        return None
    return None if a == b else prefix.rstrip(".")


def describe_option(key: str, value: Any) -> str:
    """How a recorded setting reads on the command line: "--seed 3", "--sequence", "no --sequence"."""
    flag = "--" + key.replace("_", "-")
    if value is True:
        return flag
    if value is False or value is None:
        return f"no {flag}"
    return f"{flag} {value}"


def dump_config(config: Any) -> str:
    """Return the config as YAML text, in full, for printing at the start of a run."""
    return yaml.safe_dump(config_to_dict(config), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _build(cls: type[T], data: dict[str, Any], prefix: str, where: str) -> T:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise C2FError(f"{where}: unknown key '{prefix}{unknown[0]}' (known keys: {known})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{prefix}{name}", where)
    return cls(**kwargs)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(tp: Any, value: Any, key: str, where: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise C2FError(f"{where}: '{key}' must be a mapping, found {value!r}")
        return _build(tp, value, prefix=f"{key}.", where=where)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise C2FError(f"{where}: '{key}' must be one of {list(choices)}, found {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, key, where)
            except C2FError as exc:
                errors.append(str(exc))
        raise C2FError(f"{where}: '{key}' has the wrong type: expected {_type_name(tp)}, found {value!r}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise C2FError(f"{where}: '{key}' must be a list, found {value!r}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise C2FError(f"{where}: '{key}' must have {len(args)} items, found {len(value)}")
            return tuple(_coerce(a, v, f"{key}[{i}]", where) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_coerce(item, v, f"{key}[{i}]", where) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise C2FError(f"{where}: '{key}' must be a mapping, found {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise C2FError(f"{where}: '{key}' must be true or false, found {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise C2FError(f"{where}: '{key}' must be an integer, found {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise C2FError(f"{where}: '{key}' must be a number, found {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise C2FError(f"{where}: '{key}' must be a string, found {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise C2FError(f"{where}: '{key}' must be a path string, found {value!r}")
        return Path(value)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise C2FError(f"{where}: '{key}' must be {_type_name(tp)}, found {value!r}")
    return value


__all__ = ["config_to_dict", "dump_config", "load_config"]
