"""Bringing Gen2 data in: a Gen2 repository (``repository``), its calibration registry
(``calib_registry``), and curated calibrations laid out as obs_*_data wrote them
(``curated``). Each module takes a :class:`~butler.Butler` and uses its public and
package-interface methods (docs/architecture.md).
"""
