"""Formatters: how the runtime reads and writes each file format.

One format, one module, behind the :class:`Formatter` interface (``base.py``).
The runtime looks formatters up by name in a :class:`FormatterRegistry`
(``FormatterRegistry.default()``: the built-ins plus plug-ins from the
``butler.formatters`` entry-point group; see ``registry.py`` for how to write one).
Each format's module (``butler.formatters.fits``, ``.hdf5``, ...) is imported only
when the registry first hands out its formatter, so numpy, astropy and h5py load on
demand (:class:`Image` and :class:`BBox` import numpy only when they need it).
"""

from ..image import BBox as BBox
from ..image import Image as Image
from .base import COMPRESSIONS as COMPRESSIONS
from .base import PYTHON_TYPES as PYTHON_TYPES
from .base import Formatter as Formatter
from .base import TableInfo as TableInfo
from .registry import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
from .registry import FormatterRegistry as FormatterRegistry
from .registry import builtin_formatters as builtin_formatters

__all__ = [
    "COMPRESSIONS",
    "ENTRY_POINT_GROUP",
    "PYTHON_TYPES",
    "BBox",
    "Formatter",
    "FormatterRegistry",
    "Image",
    "TableInfo",
    "builtin_formatters",
]
