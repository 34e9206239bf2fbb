"""Formatters: how the runtime reads and writes each file format.

One format, one module, behind the :class:`Formatter` interface (``base.py``).
The runtime looks formatters up by name in a :class:`FormatterRegistry`
(``FormatterRegistry.default()``: the built-ins plus plug-ins from the
``butler.formatters`` entry-point group; see ``registry.py`` for how to write one).
"""

from ..image import BBox as BBox
from ..image import Image as Image
from .base import COMPRESSIONS as COMPRESSIONS
from .base import PYTHON_TYPES as PYTHON_TYPES
from .base import Formatter as Formatter
from .base import TableInfo as TableInfo
from .ecsv import EcsvFormatter as EcsvFormatter
from .fits import FitsFormatter as FitsFormatter
from .hdf5 import Hdf5Formatter as Hdf5Formatter
from .json_format import JsonFormatter as JsonFormatter
from .pickle_format import PickleFormatter as PickleFormatter
from .registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from .registry import FormatterRegistry as FormatterRegistry
from .registry import builtin_formatters as builtin_formatters
from .text import TextFormatter as TextFormatter
from .yaml_format import YamlFormatter as YamlFormatter

__all__ = [
    "COMPRESSIONS",
    "ENTRY_POINT_GROUP",
    "PYTHON_TYPES",
    "BBox",
    "EcsvFormatter",
    "FitsFormatter",
    "Formatter",
    "FormatterRegistry",
    "Hdf5Formatter",
    "Image",
    "JsonFormatter",
    "PickleFormatter",
    "TableInfo",
    "TextFormatter",
    "YamlFormatter",
    "builtin_formatters",
]
