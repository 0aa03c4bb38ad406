"""Checks JSON the sandbox answers against the declarations of the installed ``stripe`` SDK.

The SDK's generated classes (``stripe/_invoice.py``...) declare every property of every
object with a type annotation: ``Optional[...]`` where Stripe may send null, ``Literal[...]``
for enums, nested ``StripeObject`` classes for hashes, ``ExpandableField`` for ids that expand,
``ListObject`` for embedded lists. They are read at run time, so bumping the SDK pin in
``requirements.txt`` re-checks the sandbox against the new version's declarations.

``problems(body)`` returns one line per difference: a property the SDK does not declare,
a null where its type is not Optional, a value of the wrong type, an enum value outside
the declared ``Literal``, a non-Optional property that is missing.
"""

from __future__ import annotations

import ast
import decimal
import functools
import importlib
import inspect
import sys
import typing
from typing import Any, ForwardRef, Literal, Union

import stripe
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._stripe_object import StripeObject, UntypedStripeObject

NONE = type(None)
# Error bodies: the SDK declares every field Optional, but Stripe leaves absent ones out.
ERROR_FIELDS_NEVER_NULL = True


@functools.lru_cache(maxsize=None)
def _namespace(module_name: str) -> dict[str, Any]:
    """The module's globals plus what it imports only under ``TYPE_CHECKING`` (its forward references)."""
    module = sys.modules.get(module_name) or importlib.import_module(module_name)
    names = dict(vars(module))
    tree = ast.parse(inspect.getsource(module))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    try:
                        source = importlib.import_module(statement.module)
                    except ImportError:
                        continue
                    for alias in statement.names:
                        if hasattr(source, alias.name):
                            names[alias.asname or alias.name] = getattr(source, alias.name)
    return names


@functools.lru_cache(maxsize=None)
def fields(cls: type) -> dict[str, Any]:
    """Declared property → type of a StripeObject class (its own and its bases'), forward refs resolved."""
    declared: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, StripeObject)) or klass is StripeObject:
            continue
        annotations = klass.__dict__.get("__annotations__", {})
        namespace = _namespace(klass.__module__)
        local = dict(vars(klass))
        for name, annotation in annotations.items():
            if name.isupper() or typing.get_origin(annotation) is typing.ClassVar:
                continue
            declared[name] = typing._eval_type(  # type: ignore[attr-defined]
                ForwardRef(annotation) if isinstance(annotation, str) else annotation, namespace, local)
    return declared


def class_for(object_name: str) -> type | None:
    where = OBJECT_CLASSES.get(object_name)
    if where is None:
        return None
    return getattr(importlib.import_module(where[0]), where[1])


def _is_optional(tp: Any) -> bool:
    return typing.get_origin(tp) is Union and NONE in typing.get_args(tp)


class Checker:
    def __init__(self) -> None:
        self.found: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.found.append(f"{path}: {message}")

    # -- entry points ----------------------------------------------------------------------------
    def body(self, body: Any, path: str = "$") -> None:
        """Any answer: an error body, a list, a deleted stub or an object named by its ``object``."""
        if isinstance(body, dict) and set(body) == {"error"}:
            self.error(body["error"], f"{path}.error")
        else:
            self.value(body, Any, path)

    def error(self, error: Any, path: str) -> None:
        from stripe._error_object import ErrorObject

        self.stripe_object(error, ErrorObject, path)
        if ERROR_FIELDS_NEVER_NULL and isinstance(error, dict):
            for key, value in error.items():
                if value is None:
                    self.problem(f"{path}.{key}", "null in an error body (Stripe leaves absent fields out)")

    # -- values ----------------------------------------------------------------------------------
    def value(self, value: Any, tp: Any, path: str, partial: bool = False) -> None:
        if isinstance(tp, ForwardRef):
            raise TypeError(f"unresolved forward reference {tp} at {path}")
        if isinstance(tp, typing.TypeVar):
            tp = Any
        if tp is Any or tp is object:
            if isinstance(value, dict) and value.get("object") == "list":
                self.list_object(value, Any, path)
            elif isinstance(value, dict) and isinstance(value.get("object"), str):
                cls = class_for(value["object"])
                if cls is not None:
                    self.stripe_object(value, cls, path, partial)
            elif isinstance(value, list):
                for index, item in enumerate(value):
                    self.value(item, Any, f"{path}[{index}]")
            return
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is Union:
            self.union(value, args, path, partial)
            return
        if value is None:
            self.problem(path, f"null where the SDK declares {self.name(tp)} (not Optional)")
            return
        if origin is Literal:
            if value not in args:
                self.problem(path, f"{value!r} is not one of {_few(args)}")
            return
        if origin in (list, typing.List):
            if not isinstance(value, list):
                self.problem(path, f"expected a list ({self.name(tp)}), got {type(value).__name__}")
                return
            for index, item in enumerate(value):
                self.value(item, args[0] if args else Any, f"{path}[{index}]")
            return
        if origin in (dict, typing.Dict):
            if not isinstance(value, dict):
                self.problem(path, f"expected a hash, got {type(value).__name__}")
                return
            for key, item in value.items():
                self.value(item, args[1] if len(args) > 1 else Any, f"{path}.{key}")
            return
        cls = origin if isinstance(origin, type) else tp
        if isinstance(cls, type) and issubclass(cls, ListObject):
            self.list_object(value, args[0] if args else Any, path)
            return
        if isinstance(cls, type) and issubclass(cls, UntypedStripeObject):
            if not isinstance(value, dict):
                self.problem(path, f"expected a hash, got {type(value).__name__}")
                return
            for key, item in value.items():
                self.value(item, args[0] if args else Any, f"{path}.{key}")
            return
        if isinstance(cls, type) and issubclass(cls, StripeObject):
            self.stripe_object(value, cls, path, partial)
            return
        self.scalar(value, tp, path)

    def union(self, value: Any, args: tuple[Any, ...], path: str, partial: bool) -> None:
        if value is None:
            if NONE not in args:
                self.problem(path, f"null where the SDK declares {self.name(Union[args])} (not Optional)")
            return
        options = [arg for arg in args if arg is not NONE]
        literals = [v for arg in options if typing.get_origin(arg) is Literal for v in typing.get_args(arg)]
        if literals and isinstance(value, str):
            # ``Union[Literal[...], str]`` is the SDK's room for enum values added later: the
            # sandbox must still send one of the values this version documents.
            if value not in literals:
                self.problem(path, f"{value!r} is not one of {_few(literals)}")
            return
        if len(options) == 1:
            self.value(value, options[0], path, partial)
            return
        # ExpandableField: an id, or the expanded object.
        if str in options and isinstance(value, str):
            return
        for option in options:
            trial = Checker()
            trial.value(value, option, path, partial)
            if not trial.found:
                return
        # None fits: report against the most specific option (the object, not the id).
        best = next((o for o in options if o is not str and typing.get_origin(o) is not Literal), options[0])
        self.value(value, best, path, partial)

    def scalar(self, value: Any, tp: Any, path: str) -> None:
        if tp is bool:
            ok = isinstance(value, bool)
        elif tp is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif tp is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif tp is str:
            ok = isinstance(value, str)
        elif tp is decimal.Decimal:
            # Decimal properties travel as decimal strings ("9900", "12.5").
            ok = isinstance(value, str) and _is_decimal(value)
        else:
            raise TypeError(f"unexpected declared type {tp!r} at {path}")
        if not ok:
            self.problem(path, f"{value!r} is not a {self.name(tp)}")

    def list_object(self, value: Any, item_type: Any, path: str) -> None:
        if not isinstance(value, dict):
            self.problem(path, f"expected a list object, got {type(value).__name__}")
            return
        declared = {"object": Literal["list"], "data": list[item_type],  # type: ignore[valid-type]
                    "has_more": bool, "url": str}
        self.properties(value, declared, path, partial=False)

    def stripe_object(self, value: Any, cls: type, path: str, partial: bool = False) -> None:
        if not isinstance(value, dict):
            self.problem(path, f"expected {cls.__name__} (a hash), got {type(value).__name__}")
            return
        declared = fields(cls)
        if value.get("deleted") is True and "deleted" in declared:
            partial = True  # a deleted stub has only id, object and deleted
        self.properties(value, declared, path, partial)

    def properties(self, value: dict[str, Any], declared: dict[str, Any], path: str, partial: bool) -> None:
        for key, item in value.items():
            if key not in declared:
                self.problem(f"{path}.{key}", "property not declared by the SDK")
                continue
            # In a partial object (previous_attributes) plain hashes are partial too; whole objects are not.
            child_partial = partial and not (isinstance(item, dict) and "object" in item)
            self.value(item, declared[key], f"{path}.{key}", child_partial)
        if not partial:
            for key, tp in declared.items():
                if key not in value and not _is_optional(tp):
                    self.problem(f"{path}.{key}", f"missing (the SDK declares {self.name(tp)}, not Optional)")

    @staticmethod
    def name(tp: Any) -> str:
        return getattr(tp, "__name__", None) or repr(tp).replace("typing.", "").replace("typing_extensions.", "")


def _few(values: Any) -> str:
    values = list(values)
    return str(values) if len(values) <= 12 else f"the {len(values)} values the SDK declares"


def _is_decimal(text: str) -> bool:
    try:
        decimal.Decimal(text)
    except decimal.InvalidOperation:
        return False
    return True


def problems(body: Any) -> list[str]:
    checker = Checker()
    checker.body(body)
    return checker.found


def event_problems(event: dict[str, Any]) -> list[str]:
    """An event, its ``data.object`` in full and its ``previous_attributes`` as a partial object."""
    checker = Checker()
    path = f"event[{event.get('type')}]"
    checker.value(event, stripe.Event, path)
    data = event.get("data") or {}
    obj = data.get("object")
    cls = class_for(obj.get("object")) if isinstance(obj, dict) else None
    if cls is None:
        checker.problem(f"{path}.data.object", f"object {obj and obj.get('object')!r} unknown to the SDK")
    else:  # data.object itself was checked through Event's declaration (an object named by "object")
        previous = data.get("previous_attributes")
        if previous is not None:
            checker.stripe_object(previous, cls, f"{path}.data.previous_attributes", partial=True)
    return checker.found
