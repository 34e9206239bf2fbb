"""The wire format of the remote API (version ``v1``), shared by the server and the client.

Values travel as JSON. The types JSON lacks carry a one-key tag: ``{"$date": "2024-03-01"}``,
``{"$datetime": "2024-03-02T01:02:03"}``, ``{"$range": [start, stop, step]}`` (a query's
range of values); the records the API returns (:class:`~butler.refs.DatasetRef`, a
calibration lookup's :class:`~butler.calibrations.CalibrationRef`, a
:class:`Certification`) carry their class name: ``{"$DatasetRef": {...fields}}``. A
decoder is told which records it accepts: the server accepts none from a client but a
ref, so no request builds anything else.

An error crosses the wire as the name of its :mod:`butler.errors` class and its message
(:func:`error_body`); the client raises the same class with the same message
(:func:`error_from_body`). Nothing here imports httpx or FastAPI.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .. import errors
from ..dataid import DataId
from ..errors import ButlerError, InvalidDataIdError

__all__ = [
    "API_VERSION",
    "IDEMPOTENCY_HEADER",
    "TRANSACTION_HEADER",
    "Record",
    "decode",
    "encode",
    "error_body",
    "error_from_body",
    "json_lines",
    "read_json_lines",
    "status_of",
]

#: The API version; every route but the health check and DataLink is under ``/v1/``.
API_VERSION = "v1"
#: The header a write carries so that a retried write is done once.
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: The header a write inside a remote transaction carries: the transaction's id.
TRANSACTION_HEADER = "X-Butler-Transaction"
#: How deep a decoded value may nest (a hostile request cannot exhaust the stack).
MAX_DEPTH = 16

#: A record type the wire carries: its class and how each field is rebuilt.
Record = tuple[type, Mapping[str, Callable[[Any], Any]]]


#: The types JSON carries as they are (a float only when finite).
_PLAIN = frozenset((str, int, bool, type(None)))


def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (see the module docs)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict or kind is DataId:  # a data ID of plain values: as it is, no recursion
        items = value.fields if kind is DataId else value
        if all(type(k) is str and _plain(v) for k, v in items.items()):
            return dict(items)
        return {str(k): encode(v) for k, v in items.items()}
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, range):
        return {"$range": [value.start, value.stop, value.step]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {f"${type(value).__name__}": fields}
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [encode(v) for v in value]
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item):
        return encode(item())
    return str(value)  # a header value of another kind (astropy's Undefined): its text


def _plain(value: Any) -> bool:
    """Whether JSON carries ``value`` as it is (a finite float: ``x - x`` is 0)."""
    kind = type(value)
    return kind in _PLAIN or (kind is float and value - value == 0)


def decode(data: Any, records: Mapping[str, Record] | None = None, depth: int = 0) -> Any:
    """The value :func:`encode` made; InvalidDataIdError for anything else."""
    if depth > MAX_DEPTH:
        raise InvalidDataIdError(f"a value nested more than {MAX_DEPTH} deep")
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v, records, depth + 1) for v in data]
    if not isinstance(data, dict):
        raise InvalidDataIdError(f"cannot decode {type(data).__name__} {data!r}")
    if len(data) == 1:
        ((tag, body),) = data.items()
        if isinstance(tag, str) and tag.startswith("$"):
            return _tagged(tag[1:], body, records or {}, depth)
    return {str(k): decode(v, records, depth + 1) for k, v in data.items()}


def _tagged(tag: str, body: Any, records: Mapping[str, Record], depth: int) -> Any:
    try:
        if tag == "datetime":
            return datetime.datetime.fromisoformat(body)
        if tag == "date":
            return datetime.date.fromisoformat(body)
        if tag == "float":
            return float(body)
        if tag == "range":
            start, stop, step = body
            if not all(type(v) is int for v in (start, stop, step)):
                raise TypeError("range bounds must be integers")
            return range(start, stop, step)
        if tag in records and isinstance(body, dict):
            cls, fields = records[tag]
            names = {f.name for f in dataclasses.fields(cls)}
            values = {k: decode(v, records, depth + 1) for k, v in body.items() if k in names}
            return cls(**{k: fields.get(k, _same)(v) for k, v in values.items()})
    except (TypeError, ValueError) as error:
        raise InvalidDataIdError(f"cannot decode a {tag!r} value {body!r}: {error}") from None
    raise InvalidDataIdError(f"unknown value tag ${tag} (in {body!r})")


def _same(value: Any) -> Any:
    return value


def data_id(value: Any) -> DataId:
    """A decoded mapping as a DataId (a field converter of :data:`Record`)."""
    if not isinstance(value, Mapping):
        raise TypeError(f"a data ID is a mapping, not {value!r}")
    return DataId(value)


# ---- streams -----------------------------------------------------------------------------------


def json_lines(values: Iterable[Any], batch: int = 4096) -> Iterator[bytes]:
    """``values`` encoded, one JSON document a line, in chunks of ``batch`` lines."""
    dumps = _line_encoder()
    lines: list[str] = []
    for value in values:
        lines.append(dumps(value.fields if type(value) is DataId else value))
        if len(lines) >= batch:
            yield ("\n".join(lines) + "\n").encode()
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode()


def _line_encoder() -> Callable[[Any], str]:
    """One document as a compact line of JSON. The standard library's C encoder, made once
    (``JSONEncoder.encode`` makes a new one for every call, which costs more than a data
    ID's line); the JSONEncoder itself where there is no C encoder."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(separators=(",", ":"), default=_encode_other).encode
    # markers, default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    encoder = make(
        None,
        _encode_other,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        True,
    )
    join = "".join
    return lambda document: join(encoder(document, 0))


def _encode_other(value: Any) -> Any:
    """What the JSON encoder cannot write itself (a DataId, a time), as :func:`encode` has it:
    a plain dict of plain values takes the encoder's fast path."""
    return encode(value)


def read_json_lines(chunks: Iterable[bytes]) -> Iterator[Any]:
    """The JSON documents of a :func:`json_lines` stream, from its bytes as they arrive
    (an error line raises its error). The complete lines of each chunk are parsed in one
    ``json.loads`` (as one array), not one call a line."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        if not cut:
            continue
        if b'{"error"' not in data[:cut]:
            try:
                documents = json.loads(b"[" + data[: cut - 1].replace(b"\n", b",") + b"]")
            except ValueError:
                pass  # the line by line reading below says which line is wrong
            else:
                yield from documents
                continue
        for line in data[:cut].split(b"\n"):
            if line.startswith(b'{"error"'):
                raise error_from_body(json.loads(line), "the server")
            if line:
                yield json.loads(line)
    if pending.strip():
        raise errors.RemoteError("a streamed answer ended in the middle of a line")


# ---- errors ------------------------------------------------------------------------------------

#: HTTP status of each kind of ButlerError (the most specific class listed wins).
_STATUS: tuple[tuple[type[ButlerError], int], ...] = (
    (errors.DatasetNotFoundError, 404),
    (errors.UnknownDatasetTypeError, 404),
    (errors.DatasetExistsError, 409),
    (errors.ConflictError, 409),
    (errors.ReadOnlyError, 403),
    (errors.StorageFullError, 507),
    (errors.RemoteError, 503),
)


def status_of(error: ButlerError) -> int:
    """The HTTP status that carries ``error`` (422: refused as asked)."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 422


def error_body(error: ButlerError, clean: Callable[[str], str] | None = None) -> dict[str, Any]:
    """``error`` as it crosses the wire: its class name and message (and a query's caret).

    The server passes ``clean``, its repository's :meth:`~butler.remote.redact.Redaction.text`,
    so that no message names a path of its file system."""
    message = str(error) if clean is None else clean(str(error))
    body: dict[str, Any] = {"type": type(error).__name__, "message": message}
    if isinstance(error, errors.InvalidQueryError):
        body.update(expression=error.expression, start=error.start, end=error.end)
    return {"error": body}


def error_from_body(document: Any, server: str) -> ButlerError:
    """The ButlerError an :func:`error_body` describes (a RemoteError naming ``server`` if
    the document is not one)."""
    body = document.get("error") if isinstance(document, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return errors.RemoteError(f"{server} answered with an error it did not describe")
    name, message = body.get("type"), body["message"]
    cls = getattr(errors, name, None) if isinstance(name, str) and name in errors.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, ButlerError)):
        cls = ButlerError
    if cls is errors.InvalidQueryError:
        start, end = body.get("start"), body.get("end")
        return errors.InvalidQueryError(
            message,
            str(body.get("expression", "")),
            start if isinstance(start, int) else None,
            end if isinstance(end, int) else None,
        )
    result: ButlerError = cls(message)
    return result
