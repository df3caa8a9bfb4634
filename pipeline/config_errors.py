"""params.yaml mistakes as one line each (:mod:`pipeline.config` prefixes the file's name):
``<dotted key> = <value>: <what is allowed>``, ``unknown key '<key>'; allowed in '<section>': ...``
or ``<old key> moved to <new key>``. Imports nothing from ``pipeline``.
"""
from __future__ import annotations

from typing import Any, Iterator

from pydantic import ValidationError

# Keys that moved: old -> new; "*" stands for any name in that place (an architecture).
MOVED_KEYS = {
    "cnn.*.epochs": "cnn.*.train.epochs",
    "cnn.*.batch_size": "cnn.*.train.batch_size",
    "cnn.*.learning_rate": "cnn.*.train.learning_rate",
    "features.stack.part_params": "features.stack.overrides",
}


def _found(node: Any, pattern: list[str], path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The key paths in ``node`` that ``pattern`` matches ("*": any key of a mapping)."""
    if not pattern:
        yield path
        return
    if not isinstance(node, dict):
        return
    head, *rest = pattern
    for key in (node if head == "*" else [head] if head in node else []):
        yield from _found(node[key], rest, (*path, str(key)))


def moved_key(raw: dict) -> str | None:
    """``<old key> moved to <new key>`` for the first key of ``raw`` that moved, else None."""
    for old, new in MOVED_KEYS.items():
        for path in _found(raw, old.split(".")):
            moved = [path[i] if part == "*" else part for i, part in enumerate(new.split("."))]
            return f"{'.'.join(path)} moved to {'.'.join(moved)}"
    return None


_BOUNDS = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
_REASONS = {
    "int_type": "must be an integer", "float_type": "must be a number", "bool_type": "must be true or false",
    "string_type": "must be a string", "string_too_short": "must be a non-empty string",
    "dict_type": "must be a mapping of key: value", "model_type": "must be a mapping of key: value",
    "model_attributes_type": "must be a mapping of key: value", "tuple_type": "must be a list",
}


def _reason(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "value_error":
        return str(ctx["error"])
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"must be {'an integer' if isinstance(bound, int) else 'a number'} {_BOUNDS[kind]} {bound}"
    if kind == "literal_error":
        return "allowed: " + ctx["expected"].replace("'", "").replace(" or ", ", ")
    return _REASONS.get(kind, error["msg"])


def error_line(exc: ValidationError) -> str:
    """pydantic's first error as ``<dotted key> = <value>: <what is allowed>`` (or ``missing key``,
    ``unknown key``), for the params file's name to prefix."""
    error = exc.errors()[0]
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, str) and part.startswith("<"):  # a union member's tag (config_schema.EpochSetting)
            continue
        if isinstance(part, int):
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    key = ".".join(parts)
    if error["type"] == "missing":
        return f"missing key '{key}'"
    unknown = error.get("ctx", {}).get("error")
    if hasattr(unknown, "allowed"):  # config_schema.UnknownKey (not imported: this module stays a leaf)
        return f"unknown key '{'.'.join([*parts, unknown.key])}'; allowed in '{key or 'top level'}': {unknown.allowed}"
    return f"{key} = {error['input']!r}: {_reason(error)}"
