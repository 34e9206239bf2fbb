"""Data ID normalization: from what a user typed to a checked, typed data ID.

A :class:`Normalizer` is built once per instrument from its ``KeySpec``\\ s and
``TableSpec``\\ s. For each key it precomputes one small function (map the
value, coerce it to the key's type, check its constraints), and for each
derived key one step; normalizing a data ID is then a loop over its items.
Every failure is an :class:`~butler.errors.InvalidDataIdError` that names the
key, the value and what is allowed. Normalizing twice changes nothing.
"""

from __future__ import annotations

import datetime
import difflib
import math
import numbers
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidDataIdError
from .spec import KeySpec, TableSpec, Value

__all__ = ["Normalizer", "to_datetime"]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = {"true": True, "false": False}


def _bad(key: str, value: object, problem: str) -> InvalidDataIdError:
    return InvalidDataIdError(f"{key}={value!r}: {problem}")


# ---- coercion to each key type ----------------------------------------------------------


def _to_int(key: str, raw: object) -> int:
    kind = type(raw)
    if kind is int:
        return raw  # type: ignore[return-value]
    if kind is bool or kind.__name__ == "bool_":
        raise _bad(key, raw, "expected an int, got a bool")
    if isinstance(raw, str):
        digits = raw[1:] if raw[:1] in ("+", "-") else raw
        if digits.isascii() and digits.isdigit():
            return int(raw)
        raise _bad(key, raw, "expected an int or a string of decimal digits")
    try:
        return operator.index(raw)  # type: ignore[arg-type]  # numpy ints
    except TypeError:
        pass
    if isinstance(raw, numbers.Real):
        number = float(raw)
        if number.is_integer():
            return int(number)
        raise _bad(key, raw, "expected an int, got a number with a fraction")
    raise _bad(key, raw, f"expected an int, got {kind.__name__}")


def _to_float(key: str, raw: object) -> float:
    kind = type(raw)
    if kind is bool or kind.__name__ == "bool_":
        raise _bad(key, raw, "expected a float, got a bool")
    if isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            raise _bad(key, raw, "expected a float or a decimal string") from None
    elif isinstance(raw, numbers.Real):
        number = float(raw)
    else:
        raise _bad(key, raw, f"expected a float, got {kind.__name__}")
    if number != number or number in (float("inf"), float("-inf")):
        raise _bad(key, raw, "expected a finite float")
    return number


def _to_bool(key: str, raw: object) -> bool:
    if type(raw) is bool:
        return raw
    if type(raw).__name__ == "bool_":  # numpy.bool_
        return bool(raw)
    if isinstance(raw, str) and raw.lower() in _TRUE:
        return _TRUE[raw.lower()]
    raise _bad(key, raw, "expected a bool (True/False, or the string 'true'/'false')")


def _to_str(key: str, raw: object) -> str:
    if type(raw) is str:
        return raw
    if isinstance(raw, str):
        return str(raw)
    raise _bad(key, raw, f"expected a str, got {type(raw).__name__}")


def _to_date(key: str, raw: object) -> datetime.date:
    if type(raw) is datetime.date:
        return raw
    if isinstance(raw, datetime.datetime):
        raise _bad(key, raw, "expected a date, got a datetime; pass .date() if you mean its day")
    if isinstance(raw, datetime.date):
        return datetime.date(raw.year, raw.month, raw.day)
    if isinstance(raw, str) and _ISO_DATE.fullmatch(raw):
        try:
            return datetime.date.fromisoformat(raw)
        except ValueError as error:
            raise _bad(key, raw, f"not a valid date ({error})") from None
    raise _bad(key, raw, "expected a date or an ISO date string 'YYYY-MM-DD'")


def to_datetime(key: str, scale: str | None, raw: object) -> datetime.datetime:
    if type(raw) is datetime.datetime and raw.tzinfo is None:
        return raw
    if isinstance(raw, datetime.datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.datetime.fromisoformat(raw)
        except ValueError:
            raise _bad(key, raw, "expected a datetime or an ISO 8601 string") from None
    elif isinstance(raw, datetime.date):
        raise _bad(key, raw, "expected a datetime, got a date")
    elif type(raw).__module__.startswith("astropy."):
        return _from_astropy(key, scale, raw)
    else:
        raise _bad(key, raw, f"expected a datetime, got {type(raw).__name__}")
    if moment.tzinfo is None:
        return datetime.datetime(*moment.timetuple()[:6], moment.microsecond)
    utc = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return utc if scale != "tai" else _from_astropy(key, scale, _utc_time(utc))


def _utc_time(moment: datetime.datetime) -> object:
    from astropy.time import Time

    return Time(moment, scale="utc")


def _from_astropy(key: str, scale: str | None, raw: Any) -> datetime.datetime:
    from astropy.time import Time

    if not isinstance(raw, Time) or not raw.isscalar:
        raise _bad(key, raw, "expected a datetime or a scalar astropy Time")
    try:
        moment = getattr(raw, scale or "utc").datetime
    except ValueError as error:  # e.g. a UTC leap second
        raise _bad(key, raw, f"cannot be a datetime in {scale} ({error})") from None
    return moment  # type: ignore[no-any-return]


def _coercer(spec: KeySpec) -> Callable[[object], Value]:
    name = spec.name
    if spec.type == "int":
        return lambda raw: _to_int(name, raw)
    if spec.type == "float":
        return lambda raw: _to_float(name, raw)
    if spec.type == "bool":
        return lambda raw: _to_bool(name, raw)
    if spec.type == "date":
        return lambda raw: _to_date(name, raw)
    if spec.type == "datetime":
        scale = spec.scale
        return lambda raw: to_datetime(name, scale, raw)
    return lambda raw: _to_str(name, raw)


# ---- constraints -------------------------------------------------------------------------


def _path_problem(value: str, allow_separator: bool) -> str | None:
    """Why ``value`` may not appear in a path, or None.

    A key declared ``allow "/"`` holds a path fragment spliced into a template
    (obs_base's ``subdir``: empty, or ``/fakesPlots``), so it may be empty or start
    with "/"; '..' and '.' components, empty ones ('a//b', a trailing '/'),
    backslashes and NUL stay forbidden, so that no two values name one file. Whether
    the rendered path as a whole is canonical is checked when it is rendered.
    """
    if "\x00" in value:
        return "must not contain a NUL character"
    if not value.isascii() and (problem := _not_text(value)) is not None:
        return problem
    if allow_separator:
        if "\\" in value:
            return "must not contain a backslash"
    elif not value:
        return "must not be empty"
    elif value[0] in "/\\":
        return "must not start with a path separator"
    if not allow_separator and ("/" in value or "\\" in value):
        return "must not contain a path separator ('/' or '\\'); declare the key with allow \"/\""
    parts = value.replace("\\", "/").split("/")
    if ".." in parts:
        return "must not contain '..' as a path component"
    if not value:  # an empty fragment
        return None
    return _component_problem(parts[1:] if value[0] == "/" else parts)


#: Longest name one path component may have, in bytes (most file systems: 255).
_NAME_MAX = 255


def _component_problem(parts: Sequence[str]) -> str | None:
    """Why path components from one value would alias another path or be too long."""
    for part in parts:
        if part == ".":
            return "must not be '.' or contain '.' as a path component (it names another path)"
        if not part:
            return "must not contain an empty path component ('//' or a trailing '/')"
        if len(part) * 4 > _NAME_MAX and len(part.encode("utf-8", "surrogatepass")) > _NAME_MAX:
            return f"a path component longer than {_NAME_MAX} bytes is too long for a file name"
    return None


def _not_text(value: str) -> str | None:
    """Why ``value`` is not text a file name or a database can hold (a lone surrogate), or None.

    Python strings may hold surrogate code points (``"\\udc80"``, from
    ``surrogateescape`` or a bad decode) that no UTF-8 encoder accepts: refused here,
    before any I/O, rather than by the database driver or the file system.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"contains a lone surrogate {value[error.start]!r} at index {error.start}; "
            "data ID values must be valid Unicode text (encodable as UTF-8)"
        )
    return None


def _validator(spec: KeySpec) -> Callable[[Value], None]:
    """A function that raises unless a value (of the key's type) meets every constraint.

    Only the key's own constraints are checked, each by one small function, so a
    key with none costs one call.
    """
    name, low, high = spec.name, spec.minimum, spec.maximum
    checks: list[Callable[[Any], str | None]] = []
    if low is not None or high is not None:
        out_of_range = f"out of range; {name} must be in {low!r}..{high!r}"
        if low is not None and high is not None:
            checks.append(lambda v: None if low <= v <= high else out_of_range)
        elif low is not None:
            checks.append(lambda v: None if v >= low else out_of_range)
        else:
            checks.append(lambda v: None if v <= high else out_of_range)
    if spec.choices is not None:
        choices = frozenset(spec.choices)
        not_allowed = "not one of the allowed values: " + ", ".join(map(repr, spec.choices))
        checks.append(lambda v: None if v in choices else not_allowed)
    if spec.pattern is not None:
        fullmatch = re.compile(spec.pattern).fullmatch
        mismatch = f"does not match the pattern {spec.pattern!r}"
        checks.append(lambda v: None if fullmatch(str(v)) else mismatch)
    if spec.type == "str":
        checks.append(_path_check("/" in spec.allow))
    return _all_of(name, checks)


def _path_check(allow_separator: bool) -> Callable[[str], str | None]:
    # Cheap tests first: most values are short names with nothing to look at.
    if allow_separator:
        return lambda v: (
            _path_problem(v, True)
            if "." in v
            or "\\" in v
            or "\x00" in v
            or "//" in v
            or v[-1:] == "/"
            or len(v) > 63
            or not v.isascii()
            else None
        )
    return lambda v: (
        _path_problem(v, False)
        if not v
        or v in (".", "..")
        or "/" in v
        or "\\" in v
        or "\x00" in v
        or len(v) > 63
        or not v.isascii()
        else None
    )


def _all_of(name: str, checks: Sequence[Callable[[Any], str | None]]) -> Callable[[Value], None]:
    if not checks:
        return _always_valid
    if len(checks) == 1:
        (check,) = checks

        def validate_one(value: Any) -> None:
            problem = check(value)
            if problem is not None:
                raise _bad(name, value, problem)

        return validate_one

    def validate(value: Any) -> None:
        for check in checks:
            problem = check(value)
            if problem is not None:
                raise _bad(name, value, problem)

    return validate


def _always_valid(value: Value) -> None:
    return None


def _refused(validate: Callable[[Value], None], value: Value) -> bool:
    """Whether ``validate`` refuses ``value``."""
    try:
        validate(value)
    except InvalidDataIdError:
        return True
    return False


# ---- one key, and derived keys ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _KeyRule:
    """How one key's value is normalized: mapped, coerced, validated."""

    spec: KeySpec
    mapping: Mapping[Any, Value]
    coerce: Callable[[object], Value]
    validate: Callable[[Value], None]

    def mapped(self, raw: object) -> object:
        if not self.mapping or (type(raw) is bool and self.spec.type != "bool"):
            return raw
        try:
            return self.mapping.get(raw, raw)
        except TypeError:  # unhashable: coercion will refuse it
            return raw

    def __call__(self, raw: object) -> Value:
        value = self.coerce(self.mapped(raw))
        if self.mapping and value in self.mapping:
            value = self.coerce(self.mapping[value])
        self.validate(value)
        return value

    def fast(self) -> Callable[[object], Value]:
        """The same as calling the rule, as one closure (no mapping: two calls).

        Values that are already normalized (an int in range, a str among the
        choices: what the registry hands back, and what most callers pass) are
        recognized with one test and returned as they are.
        """
        if self.mapping:
            return self.__call__
        coerce, validate = self.coerce, self.validate

        def normalize(raw: object) -> Value:
            value = coerce(raw)
            validate(value)
            return value

        spec = self.spec
        plain = spec.pattern is None
        if spec.type == "int" and plain and spec.choices is None:
            low: float = spec.minimum if isinstance(spec.minimum, int) else -math.inf
            high: float = spec.maximum if isinstance(spec.maximum, int) else math.inf

            def normalize_int(raw: object) -> Value:
                if type(raw) is int and low <= raw <= high:
                    return raw
                return normalize(raw)

            return normalize_int
        if spec.type == "str" and plain and spec.choices is not None and spec.minimum is None:
            choices = frozenset(spec.choices)
            if all(isinstance(c, str) and not _refused(validate, c) for c in choices):

                def normalize_str(raw: object) -> Value:
                    if type(raw) is str and raw in choices:
                        return raw
                    return normalize(raw)

                return normalize_str
        return normalize


@dataclass(frozen=True, slots=True)
class _Derivation:
    """Fills (or checks) ``key`` from ``source``; inverts a one-to-one table."""

    key: str
    source: str
    describe: str  # "date(taiObs)" or "detectors(ccd)"
    forward: Callable[[Value], Value | None]
    inverse: Mapping[Value, Value] | None
    values: frozenset[Value] | None

    def apply(self, items: dict[str, Value], steps: list[str] | None) -> bool:
        """Derive or check in place; True if the source was filled from the key."""
        key, source = self.key, self.source
        if source in items:
            value = self.forward(items[source])
            if value is None:
                if key in items:
                    raise InvalidDataIdError(
                        f"{source}={items[source]!r} has no row in {self.describe.split('(')[0]}, "
                        f"so {key}={items[key]!r} cannot be checked against it"
                    )
                return False
            if key in items:
                if items[key] != value:
                    raise InvalidDataIdError(
                        f"{key}={items[key]!r} does not match {source}={items[source]!r}: "
                        f"{key} = {self.describe} = {value!r}"
                    )
            else:
                items[key] = value
                if steps is not None:
                    steps.append(f"{key} = {self.describe} = {value!r} (derived)")
            return False
        if key not in items:
            return False
        if self.values is not None and items[key] not in self.values:
            allowed = ", ".join(sorted(repr(v) for v in self.values))
            raise _bad(key, items[key], f"not a value of {self.describe}; allowed: {allowed}")
        if self.inverse is None:
            return False
        items[source] = self.inverse[items[key]]
        if steps is not None:
            steps.append(f"{source} = {items[source]!r} from {key} (inverse of {self.describe})")
        return True


def _date_of(value: Value) -> Value | None:
    return value.date() if isinstance(value, datetime.datetime) else value


def _same(value: Value) -> Value | None:
    return value


class _Same(Mapping[Value, Value]):
    """The inverse of ``same(K)``: every value maps to itself."""

    def __getitem__(self, value: Value) -> Value:
        return value

    def __iter__(self) -> Iterator[Value]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _derivation(spec: KeySpec, tables: Mapping[str, TableSpec]) -> _Derivation:
    assert spec.derive is not None
    source = spec.derive.source
    if spec.derive.function == "date":
        return _Derivation(spec.name, source, f"date({source})", _date_of, None, None)
    if spec.derive.function == "same":
        return _Derivation(spec.name, source, f"same({source})", _same, _Same(), None)
    table_name = spec.derive.table or ""
    table = tables.get(table_name)
    if table is None:
        raise InvalidDataIdError(f"key {spec.name!r} is derived from unknown table {table_name!r}")
    rows = dict(table.rows)
    values = [value for _, value in table.rows]
    inverse = {value: key for key, value in table.rows} if len(set(values)) == len(rows) else None
    describe = f"{table_name}({source})"
    return _Derivation(spec.name, source, describe, rows.get, inverse, frozenset(values))


def _in_dependency_order(specs: Sequence[KeySpec]) -> list[KeySpec]:
    """Derived keys, each after the derived key it is computed from (no cycles: checked)."""
    derived = {spec.name: spec for spec in specs if spec.derive is not None}
    ordered: list[KeySpec] = []
    placed: set[str] = set()

    def place(spec: KeySpec) -> None:
        if spec.name in placed:
            return
        placed.add(spec.name)
        assert spec.derive is not None
        if spec.derive.source in derived:
            place(derived[spec.derive.source])
        ordered.append(spec)

    for spec in derived.values():
        place(spec)
    return ordered


# ---- the normalizer ------------------------------------------------------------------------


class Normalizer:
    """Turns a mapping of user-given keys and values into a normalized data ID."""

    __slots__ = ("_derivations", "_fast", "_names", "_rules", "keys", "order")

    def __init__(self, keys: Sequence[KeySpec], tables: Sequence[TableSpec] = ()) -> None:
        self.keys = {spec.name: spec for spec in keys}
        self.order = tuple(spec.name for spec in keys)
        self._names: dict[str, str] = {}
        for spec in keys:
            self._names[spec.name] = spec.name
            for alias in spec.aliases:
                self._names.setdefault(alias, spec.name)
        self._rules = {
            spec.name: _KeyRule(spec, dict(spec.normalize), _coercer(spec), _validator(spec))
            for spec in keys
        }
        # accepted name -> (canonical name, normalizing function), for the hot loop
        self._fast = {name: (key, self._rules[key].fast()) for name, key in self._names.items()}
        by_name = {table.name: table for table in tables}
        self._derivations = tuple(_derivation(s, by_name) for s in _in_dependency_order(keys))

    def canonical(self, name: str) -> str:
        """The key that ``name`` (a key or an alias) stands for."""
        canonical = self._names.get(name)
        if canonical is None:
            close = difflib.get_close_matches(name, list(self._names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(self.order)
            raise InvalidDataIdError(f"unknown key {name!r} in data ID{hint} (keys: {known})")
        return canonical

    def value(self, key: str, raw: object) -> Value:
        """One key's value, normalized (``key`` is canonical)."""
        return self._rules[key](raw)

    def validator(self, key: str) -> Callable[[Value], None]:
        """The function that checks a value already of ``key``'s type against its constraints."""
        return self._rules[key].validate

    def normalize(
        self, values: Mapping[str, object], steps: list[str] | None = None
    ) -> dict[str, Value]:
        """A new dict of canonical keys (in declaration order) to normalized values.

        If ``steps`` is a list, a line describing each rule applied is appended to it.
        """
        if steps is not None:
            return self._normalize_explained(values, steps)
        items: dict[str, Value] = {}
        fast = self._fast
        for name, raw in values.items():
            try:
                key, normalize = fast[name]
            except KeyError:
                self.canonical(name)
                raise
            value = normalize(raw)
            if key in items and items[key] != value:
                raise self._twice(values, key, name)
            items[key] = value
        return self.complete(items)

    def complete(
        self, items: dict[str, Value], steps: list[str] | None = None, *, ordered: bool = False
    ) -> dict[str, Value]:
        """``items`` (valid values of canonical keys) with derived keys, in declaration order.

        ``ordered`` says ``items`` is already in declaration order (saves a copy).
        """
        count = len(items)
        if self._derivations:
            self._derive(items, steps)
        if len(items) < 2 or (ordered and len(items) == count):
            return items
        return {key: items[key] for key in self.order if key in items}

    def _normalize_explained(
        self, values: Mapping[str, object], steps: list[str]
    ) -> dict[str, Value]:
        items: dict[str, Value] = {}
        for name, raw in values.items():
            key = self.canonical(name)
            value = self._explained(self._rules[key], name, raw, steps)
            if key in items and items[key] != value:
                raise self._twice(values, key, name)
            items[key] = value
        return self.complete(items, steps)

    def _twice(self, values: Mapping[str, object], key: str, name: str) -> InvalidDataIdError:
        first = next(n for n in values if self._names.get(n) == key)
        return InvalidDataIdError(
            f"{key} is given twice, as {first}={values[first]!r} and {name}={values[name]!r}; "
            "give it once"
        )

    def _derive(self, items: dict[str, Value], steps: list[str] | None) -> None:
        again = False
        for derivation in self._derivations:
            if derivation.apply(items, steps):
                self._rules[derivation.source].validate(items[derivation.source])
                again = True
        if again:
            for derivation in self._derivations:
                derivation.apply(items, steps)

    @staticmethod
    def _explained(rule: _KeyRule, name: str, raw: object, steps: list[str]) -> Value:
        key = rule.spec.name
        if name != key:
            steps.append(f"{name} -> {key}: alias renamed")
        mapped = rule.mapped(raw)
        if mapped is not raw:
            steps.append(f"{key}: {raw!r} -> {mapped!r} (normalize rule)")
        value = rule(raw)
        if type(value) is not type(mapped) or value != mapped:
            steps.append(f"{key}: {mapped!r} -> {value!r} (coerced to {rule.spec.type})")
        return value
