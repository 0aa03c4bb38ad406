"""Decoding of Stripe's bracket-notation form parameters and typed access to them.

``items[0][price]=p&metadata[a]=1&expand[]=x`` becomes
``{"items": [{"price": "p"}], "metadata": {"a": "1"}, "expand": ["x"]}``.
Every leaf stays a string, as it arrived; the accessors below convert where the
API expects an integer or a boolean and raise Stripe's own 400 errors.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from .errors import InvalidRequest, invalid, missing, not_supported

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_APPEND = object()


def decode_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested dicts/lists from ``(key, value)`` pairs in bracket notation."""
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = _KEY.match(raw_key)
        if not match:
            raise InvalidRequest(f"Invalid parameter name: {raw_key}", param=raw_key)
        path: list[Any] = [match.group(1)]
        for part in _PART.findall(match.group(2)):
            path.append(_APPEND if part == "" else part)
        _assign(root, path, value, raw_key)
    return _listify(root)


def _assign(node: dict[str, Any], path: list[Any], value: str, raw_key: str) -> None:
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if part is _APPEND:
            # "expand[]=a&expand[]=b": give each value the next free numeric slot.
            part = str(len(node))
        if last:
            node[part] = value
            return
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise InvalidRequest(f"Invalid parameter name: {raw_key}", param=raw_key)
        node = child


def _listify(node: Any) -> Any:
    """Turn dicts whose keys are all integers into lists, in index order."""
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


class Params:
    """Read access to decoded parameters, with Stripe's validation errors.

    ``prefix`` names nested params in error messages, e.g. ``items[0][price]``.
    """

    def __init__(self, data: Mapping[str, Any] | None, prefix: str = "") -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}[{key}]" if self.prefix else key

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def reject_unknown(self, allowed: Iterable[str], unsupported: Iterable[str] = ()) -> None:
        """Refuse parameters Stripe does not know (``parameter_unknown``) and, naming the sandbox,
        those Stripe accepts but the sandbox would otherwise have to ignore (``unsupported``)."""
        allowed_set = set(allowed) | {"expand"}
        unsupported_set = set(unsupported)
        for key in self.data:
            if key in unsupported_set:
                raise not_supported(self.name(key))
            if key == "payment_method_types" and key in allowed_set:
                # Cards are the only payment method the sandbox has.
                if any(kind != "card" for kind in self.str_list(key)):
                    raise not_supported(self.name(key), " other than [\"card\"]")
            if key not in allowed_set:
                raise InvalidRequest(
                    f"Received unknown parameter: {self.name(key)}",
                    code="parameter_unknown",
                    param=self.name(key),
                )

    def str(self, key: str, required: bool = False, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise missing(self.name(key))
            return default
        if not isinstance(value, str):
            raise invalid(self.name(key), f"Invalid string: {self.name(key)} must be a string.")
        if required and value == "":
            raise missing(self.name(key))
        return value

    def nullable_str(self, key: str) -> tuple[bool, str | None]:
        """(given, value): an empty string is Stripe's way to unset a field."""
        if key not in self.data:
            return False, None
        value = self.str(key)
        return True, (value or None)

    def int(self, key: str, required: bool = False, default: int | None = None,
            minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise invalid(self.name(key), f"Invalid integer: {value}", "parameter_invalid_integer")
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?\d+", text):
            raise invalid(self.name(key), f"Invalid integer: {text}", "parameter_invalid_integer")
        number = int(text)
        if minimum is not None and number < minimum:
            raise invalid(self.name(key),
                          f"This value must be greater than or equal to {minimum}.",
                          "parameter_invalid_integer")
        if maximum is not None and number > maximum:
            raise invalid(self.name(key),
                          f"This value must be less than or equal to {maximum}.",
                          "parameter_invalid_integer")
        return number

    def timestamp(self, key: str, now: int, required: bool = False, allow_now: bool = True) -> int | None:
        if allow_now and self.data.get(key) == "now":
            return now
        return self.int(key, required=required, minimum=0)

    def bool(self, key: str, default: bool | None = None) -> bool | None:
        value = self.data.get(key)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if value in ("true", "True", "1"):
            return True
        if value in ("false", "False", "0"):
            return False
        raise invalid(self.name(key), f"Invalid boolean: {value}", "parameter_invalid_boolean")

    def enum(self, key: str, choices: Iterable[str], required: bool = False,
             default: str | None = None) -> str | None:
        value = self.str(key, required=required)
        if value is None or value == "":
            return default
        options = list(choices)
        if value not in options:
            raise invalid(self.name(key),
                          f"Invalid {self.name(key)}: must be one of {', '.join(options)}")
        return value

    def dict(self, key: str, required: bool = False) -> Params | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return None
        if isinstance(value, list):
            value = {str(i): v for i, v in enumerate(value)}
        if not isinstance(value, dict):
            raise invalid(self.name(key), f"Invalid object: {self.name(key)}")
        return Params(value, self.name(key))

    def list(self, key: str, required: bool = False) -> list[Any]:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return []
        if isinstance(value, dict):
            # Some clients send "items[a][price]"; Stripe only accepts indexes.
            raise invalid(self.name(key), f"Invalid array: {self.name(key)}")
        if not isinstance(value, list):
            return [value]
        return value

    def list_of_dicts(self, key: str, required: bool = False) -> list[Params]:
        result = []
        for index, item in enumerate(self.list(key, required=required)):
            if not isinstance(item, dict):
                raise invalid(f"{self.name(key)}[{index}]", f"Invalid object: {self.name(key)}[{index}]")
            result.append(Params(item, f"{self.name(key)}[{index}]"))
        return result

    def str_list(self, key: str) -> list[str]:
        values = self.list(key)
        for index, item in enumerate(values):
            if not isinstance(item, str):
                raise invalid(f"{self.name(key)}[{index}]", "Invalid string array")
        return values

    def metadata(self, current: dict[str, str] | None = None, key: str = "metadata") -> dict[str, str] | None:
        """Stripe's merge semantics: keys are set, ``""`` unsets one key, ``metadata=""`` clears all."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        if not isinstance(value, dict):
            raise invalid(self.name(key), f"Invalid object: {self.name(key)}")
        merged = dict(current or {})
        for meta_key, meta_value in value.items():
            if not isinstance(meta_value, str):
                raise invalid(f"{self.name(key)}[{meta_key}]", "Metadata values must be strings.")
            if len(meta_key) > 40:
                raise invalid(f"{self.name(key)}[{meta_key}]",
                              "Metadata keys can have up to 40 characters.")
            if len(meta_value) > 500:
                raise invalid(f"{self.name(key)}[{meta_key}]",
                              "Metadata values can have up to 500 characters.")
            if meta_value == "":
                merged.pop(meta_key, None)
            else:
                merged[meta_key] = meta_value
        if len(merged) > 50:
            raise invalid(self.name(key), "Metadata can have up to 50 keys.")
        return merged

    def expand(self) -> list[str]:
        return self.str_list("expand")

    def created_range(self, key: str = "created") -> dict[str, int]:
        """``created=123`` or ``created[gte]=..`` etc. as operator → value."""
        value = self.data.get(key)
        if value is None or value == "":
            return {}
        if isinstance(value, str):
            return {"eq": self.int(key)}
        nested = self.dict(key)
        assert nested is not None
        nested.reject_unknown(["gt", "gte", "lt", "lte"])
        return {op: nested.int(op) for op in ("gt", "gte", "lt", "lte") if op in nested}
