"""butler: data by name and data ID, with layouts written once per instrument.

``load_mapper("hsc")`` gives the :class:`Mapper` of an instrument; a mapper turns
data IDs into paths (``mapper.path("raw", visit=903334, ccd=16, ...)``) and back.
"""

from . import errors as errors
from .dataid import DataId as DataId
from .loading import load_mapper as load_mapper
from .mapper import Mapper as Mapper

__all__ = ["DataId", "Mapper", "errors", "load_mapper"]
