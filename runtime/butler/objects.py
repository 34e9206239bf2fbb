"""What a put may store: the object against its dataset type's format, checked first.

A put of an object its format cannot hold would either fail half-way through the
write or, worse, succeed and leave a file that every later ``get`` refuses (a ``str``
in a YAML dataset declared ``python "dict"``). :func:`check_object` refuses such an
object before anything is written, with an :class:`~butler.errors.ObjectTypeError`
naming the dataset type, the type expected and the type given. It is an
``isinstance`` test or two: the declared builtin type (the one ``get`` checks), and,
for an :class:`~butler.image.Image`, that each metadata value is still a scalar.
"""

from __future__ import annotations

from .errors import ObjectTypeError
from .image import Image

__all__ = ["BUILTIN_TYPES", "check_object"]

#: Declared Python types (builtin names) that a read checks what it read against, too.
BUILTIN_TYPES: dict[str, type | tuple[type, ...]] = {
    "dict": dict,
    "list": list,
    "str": str,
    "int": int,
    "float": (float, int),
    "bool": bool,
}
_SCALARS = (bool, int, float, str)


def check_object(dataset_type: str, python_type: str | None, obj: object) -> None:
    """Refuse ``obj`` if a ``dataset_type`` stored as ``python_type`` cannot hold it."""
    expected = BUILTIN_TYPES.get(python_type or "")
    if expected is not None and not isinstance(obj, expected):
        raise ObjectTypeError(
            f"cannot put a {type(obj).__qualname__} as {dataset_type!r}: its format holds a "
            f"{python_type}, so a later get could not read it back; nothing was written"
        )
    if isinstance(obj, Image):
        for card, value in obj.metadata.items():
            if not isinstance(value, _SCALARS) and getattr(value, "shape", None) != ():
                raise ObjectTypeError(
                    f"cannot put an Image as {dataset_type!r}: its metadata {card!r} is a "
                    f"{type(value).__name__}; metadata values must be bool, int, float or str "
                    "(flatten nested values into separate cards); nothing was written"
                )
