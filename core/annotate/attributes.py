"""Image-level attributes: the schema's defaults, validation, and which stored keys a save keeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.annotate.errors import AnnotationError

# Image.attributes keys with this prefix are machine keys (never ground truth), not the
# attribute schema's: an attribute save keeps them.
MACHINE_ATTRIBUTE_PREFIX = "auto_"


def default_attributes(schema: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The first allowed value of every attribute (the schema's defaults)."""
    return {name: str(values[0]) for name, values in schema.items() if values}


def effective_attributes(schema: Mapping[str, Sequence[str]], stored: Mapping[str, Any]) -> dict[str, str]:
    """The image's attribute values, with schema defaults for any not set (or no longer allowed)."""
    out = default_attributes(schema)
    for name, values in schema.items():
        if name in stored and stored[name] in values:
            out[name] = str(stored[name])
    return out


def stored_attributes(schema: Mapping[str, Sequence[str]], stored: Mapping[str, Any] | None) -> dict[str, str]:
    """The values the image really stores for the schema's tags (no defaults: a tag not stored is unknown)."""
    return {name: str(stored[name]) for name in schema if stored and stored.get(name) in values_of(schema, name)}


def values_of(schema: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """The allowed values of one tag, as text."""
    return [str(v) for v in schema.get(name, [])]


def validate_attributes(schema: Mapping[str, Sequence[str]], attributes: Mapping[str, Any]) -> dict[str, str]:
    """Checks image-level attributes against the project's schema.

    Raises:
        AnnotationError: For an attribute the schema does not have or a value it does not allow.
    """
    clean: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in schema:
            raise AnnotationError(f"Unknown attribute {name!r}; this project has: {', '.join(schema) or 'none'}.")
        if value not in schema[name]:
            raise AnnotationError(
                f"{value!r} is not allowed for {name!r}; choose one of: {', '.join(map(str, schema[name]))}."
            )
        clean[name] = str(value)
    return clean


def merged_attributes(
    schema: Mapping[str, Sequence[str]], stored: Mapping[str, Any] | None, attributes: Mapping[str, Any]
) -> dict[str, Any]:
    """What an attribute save stores: ``attributes`` validated against the schema.

    Keys the schema does not own (machine ``auto_`` keys) survive an attribute save.

    Raises:
        AnnotationError: As :func:`validate_attributes`.
    """
    kept_keys = {k: v for k, v in (stored or {}).items() if str(k).startswith(MACHINE_ATTRIBUTE_PREFIX)}
    return {**kept_keys, **validate_attributes(schema, attributes)}
