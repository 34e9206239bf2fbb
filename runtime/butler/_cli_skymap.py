"""``butler skymap ROOT [NAME] [--find RA,DEC]``: the repository policy's skymaps.

Without NAME, one line per skymap the repository's policy defines (kind, tracts,
pixel scale, patch size, and the dataset types whose tract/patch keys belong to
it). With NAME and ``--find``, the tract and patch holding a position, with the
patch as both Gen2 (``"5,4"``) and Gen3 (the index) write it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._cli_common import add_root, command, echo
from .errors import InvalidDataIdError

__all__ = ["add_commands"]


def _position(text: str) -> tuple[float, float]:
    try:
        ra, dec = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a position: write RA,DEC in degrees, e.g. 150.1,2.2"
        ) from None
    return ra, dec


def _listing(butler: Any, names: tuple[str, ...]) -> None:
    mapper = butler.mapper
    if not names:
        echo(f"instrument {mapper.name}'s policy defines no skymap")
        return
    for name in names:
        spec = next(s for s in mapper.spec.skymaps if s.name == name)
        users = [t for t in mapper.dataset_types if mapper.dataset_type(t).skymap == name]
        skymap = mapper.skymap(name)
        shape = f"{spec.num_rings} rings" if spec.kind == "rings" else "discrete"
        grid = "cells" if spec.cells else "legacy"
        width, height = skymap.tract(0).grid.inner_width, skymap.tract(0).grid.inner_height
        echo(
            f"{name}: {shape}, {len(skymap)} tracts, {spec.projection}, "
            f'{spec.pixel_scale}"/pixel, {grid} patches of {width} x {height} pixels; '
            f"{len(users)} dataset types"
        )


def _find(butler: Any, name: str, ra: float, dec: float) -> None:
    skymap = butler.skymap(name)
    tract = skymap.find_tract(ra, dec)
    try:
        patch = tract.find_patch(ra, dec)
    except InvalidDataIdError:  # a discrete skymap's nearest tract need not hold the point
        echo(f"tract {tract.id} (nearest centre; the position is outside it)")
        return
    echo(f"tract {tract.id} patch {patch.gen2} (index {patch.index})")


def _skymap(args: argparse.Namespace) -> int:
    from ._cli_chain import session_config
    from .butler import Butler

    with Butler(args.root, config=session_config()) as butler:
        if args.name is None and args.find is not None:
            raise InvalidDataIdError(
                "--find needs a skymap NAME: butler skymap ROOT NAME --find RA,DEC"
            )
        if args.name is None:
            _listing(butler, butler.mapper.skymaps)
        elif args.find is None:
            butler.skymap(args.name)  # an unknown name fails, naming the policy's skymaps
            _listing(butler, (args.name,))
        else:
            _find(butler, args.name, *args.find)
    return 0


def add_commands(commands: Any) -> None:
    """``butler skymap``."""
    parser = command(
        commands,
        "skymap",
        "list the repository's skymaps, or find the tract and patch of a position",
    )
    add_root(parser)
    parser.add_argument(
        "name",
        nargs="?",
        metavar="NAME",
        help="a skymap the repository's policy defines (e.g. hsc_rings_v1); "
        "without it, every skymap is listed",
    )
    parser.add_argument(
        "--find",
        type=_position,
        metavar="RA,DEC",
        help="print the tract and patch (Gen2 'x,y' and Gen3 index) holding this position, "
        "in degrees",
    )
    parser.set_defaults(run=_skymap)
