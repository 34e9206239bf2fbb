"""butler: data by name and data ID, with layouts written once per instrument.

    from butler import Butler

    butler = Butler.create("repo", mapper="toycam")
    butler.put(image, "calexp", visit=42, detector=1)

``load_mapper("hsc")`` gives the :class:`Mapper` of an instrument; a mapper turns
data IDs into paths (``mapper.path("raw", visit=903334, ccd=16, ...)``) and back.

The names below that need SQLAlchemy or the formatters (``Butler``, ``Registry``,
``Image``, ...) are imported the first time they are used, so ``import butler``
stays cheap for code that only needs a mapper.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import errors as errors
from .dataid import DataId as DataId
from .errors import AmbiguousCalibrationError as AmbiguousCalibrationError
from .errors import AmbiguousDataIdError as AmbiguousDataIdError
from .errors import BundleError as BundleError
from .errors import ButlerError as ButlerError
from .errors import CalibrationNotFoundError as CalibrationNotFoundError
from .errors import ChainError as ChainError
from .errors import ConfigError as ConfigError
from .errors import ConflictError as ConflictError
from .errors import DatasetCorruptError as DatasetCorruptError
from .errors import DatasetExistsError as DatasetExistsError
from .errors import DatasetNotFoundError as DatasetNotFoundError
from .errors import DatasetTypeDefinitionError as DatasetTypeDefinitionError
from .errors import ForeignRefError as ForeignRefError
from .errors import FormatError as FormatError
from .errors import InvalidDataIdError as InvalidDataIdError
from .errors import InvalidQueryError as InvalidQueryError
from .errors import InvalidRegionError as InvalidRegionError
from .errors import MapperError as MapperError
from .errors import MapperVersionError as MapperVersionError
from .errors import ObjectMissingError as ObjectMissingError
from .errors import ObjectStoreAccessError as ObjectStoreAccessError
from .errors import ObjectStoreError as ObjectStoreError
from .errors import ObjectStoreUnavailableError as ObjectStoreUnavailableError
from .errors import ObjectTypeError as ObjectTypeError
from .errors import OverrideError as OverrideError
from .errors import ReadOnlyError as ReadOnlyError
from .errors import RegistryError as RegistryError
from .errors import RegistryNotFoundError as RegistryNotFoundError
from .errors import RemoteError as RemoteError
from .errors import RepositoryError as RepositoryError
from .errors import SkyMapDefinitionError as SkyMapDefinitionError
from .errors import StorageFullError as StorageFullError
from .errors import UnknownDatasetTypeError as UnknownDatasetTypeError
from .errors import UnknownSkyMapError as UnknownSkyMapError
from .loading import load_mapper as load_mapper
from .mapper import Mapper as Mapper
from .refs import DatasetRef as DatasetRef

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports them on first use
    from .butler import Butler as Butler
    from .formatters import Formatter as Formatter
    from .formatters import FormatterRegistry as FormatterRegistry
    from .image import BBox as BBox
    from .image import Image as Image
    from .ingest import IngestReport as IngestReport
    from .ingest import InstrumentRules as InstrumentRules
    from .maintenance import IndexReport as IndexReport
    from .maintenance import VerifyReport as VerifyReport
    from .registry import Registry as Registry
    from .skymap import Circle as Circle
    from .skymap import Polygon as Polygon

#: Public names imported on first use -> the module that defines them.
_LAZY = {
    "Butler": ".butler",
    "Registry": ".registry",
    "Image": ".image",
    "BBox": ".image",
    "Formatter": ".formatters",
    "FormatterRegistry": ".formatters",
    "InstrumentRules": ".ingest",
    "IngestReport": ".ingest",
    "IndexReport": ".maintenance",
    "VerifyReport": ".maintenance",
    "Circle": ".skymap",  # sky regions for butler.query(region=...) (issue 17)
    "Polygon": ".skymap",
}

__all__ = sorted(
    [*_LAZY, *errors.__all__, "DataId", "DatasetRef", "Mapper", "errors", "load_mapper"]
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'butler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next lookup finds it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
