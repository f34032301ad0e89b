"""The smallest instance of a JSON schema: the fake server's reply when a client asks for one."""

from __future__ import annotations

from typing import Any


def minimal_instance(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """The smallest value valid against a JSON schema of the kind pydantic emits.

    Covers $ref/$defs, anyOf/oneOf/allOf, const, enum, objects (every property
    filled, as OpenAI's strict mode requires), arrays (minItems), strings
    (min/maxLength), numbers (bounds), booleans and null. Not a general
    JSON-schema solver: patterns and formats are not honoured.
    """
    root = root if root is not None else schema
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        return minimal_instance(node, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            options = schema[combinator]
            non_null = [o for o in options if o.get("type") != "null"]
            return minimal_instance((non_null or options)[0], root)
    if schema.get("allOf"):
        return minimal_instance(schema["allOf"][0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {name: minimal_instance(prop, root) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        item = schema.get("items") or {}
        return [minimal_instance(item, root) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        length = max(int(schema.get("minLength", 1)), 1)
        return "x" * min(length, int(schema.get("maxLength", length)))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        value = 0 if low is None else low + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        high = schema.get("maximum")
        value = min(value, high) if high is not None else value
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return False
    return None
