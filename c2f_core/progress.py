"""Progress bars for long work, silenced by `--quiet`."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(
    iterable: Iterable[T], total: int | None = None, desc: str = "", quiet: bool = False, unit: str = "it"
) -> Iterator[T]:
    """Wrap an iterable in a tqdm bar on stderr; a plain pass-through when `quiet`."""
    if quiet:
        yield from iterable
        return
    yield from tqdm(
        iterable, total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False
    )
