"""Reading pickles that may hold only numpy arrays and plain Python data (no torch).

`pickle.load` imports and calls whatever a file names, so a downloaded pickle could run code. The
unpickler here resolves only an allow-list of numpy and builtin globals and refuses any other class
with a C2FError before anything of it runs; subclasses widen the list through `extra_global`, for
instance to turn a third-party class into an inert `PickledRecord`. Python-2 pickles (ObMan's meta
files, the MANO model) are read with latin1 so their byte strings come back unchanged.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import numpy as np

from c2f_core.errors import C2FError

_NUMPY_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


def _numpy_multiarray_global(name: str) -> Any:
    try:  # numpy >= 2 (numpy.core is deprecated there)
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric

    return {
        "_reconstruct": multiarray._reconstruct,
        "scalar": multiarray.scalar,
        "_frombuffer": numeric._frombuffer,
    }[name]


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stand-in for `_codecs.encode`, which Python 3 protocol-2 pickles use to store bytes."""
    if encoding.replace("-", "").lower() != "latin1":
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class PickledRecord:
    """An inert record of a pickled object whose class we never import (chumpy, old scipy).

    Unpickling calls `__new__` (NEWOBJ or a REDUCE of the class) and `__setstate__` (BUILD);
    both only store what they are given.
    """

    pickled_class = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        record = super().__new__(cls)
        record.args = args
        record.state = None
        return record

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Stand-in for `copy_reg._reconstructor` (protocol 0/1 objects), limited to our records."""
    if not (isinstance(cls, type) and issubclass(cls, PickledRecord)) or base is not object:
        raise pickle.UnpicklingError(f"refusing copy_reg._reconstructor for {cls!r}")
    return cls.__new__(cls)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and plain Python data, and refuses every other class.

    Subclasses widen it through `extra_global`. A refused class raises C2FError before anything
    of it runs.
    """

    allowed = "numpy arrays and plain Python data"

    def __init__(self, file: Any, source: str, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source

    def extra_global(self, module: str, name: str) -> Any | None:
        """Return a replacement for `module.name`, or None to refuse it."""
        return None

    def find_class(self, module: str, name: str) -> Any:
        """Resolve a pickled global against the allow-list."""
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[(module, name)]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in (
            "_reconstruct",
            "scalar",
        ):
            return _numpy_multiarray_global(name)
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _numpy_multiarray_global(name)
        if module in ("__builtin__", "builtins") and name in ("set", "frozenset", "object"):
            return {"set": set, "frozenset": frozenset, "object": object}[name]
        if module == "_codecs" and name == "encode":
            return _latin1_encode
        if module in ("copy_reg", "copyreg") and name == "_reconstructor":
            return _safe_reconstructor
        replacement = self.extra_global(module, name)
        if replacement is not None:
            return replacement
        raise C2FError(
            f"{self.source}: refusing to load class {module}.{name} (this file may hold only "
            f"{self.allowed}); is this the right file?"
        )


# What unpickling a truncated or garbled file raises; C2FError (a refused class) passes through.
_CORRUPT_PICKLE_ERRORS = (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    UnicodeDecodeError,
    OverflowError,
    MemoryError,
)


def load_restricted_pickle(path: str | Path, what: str = "pickle") -> Any:
    """Load a pickle that may hold only numpy arrays and plain Python data (Python 2 or 3)."""
    path = Path(path)
    if not path.is_file():
        raise C2FError(f"{what} file not found: {path}")
    return run_unpickler(RestrictedUnpickler, path, what)


def run_unpickler(cls: Callable[..., RestrictedUnpickler], path: Path, what: str) -> Any:
    """Unpickle `path` with `cls`, turning a truncated or garbled file into C2FError naming `what`."""
    with open(path, "rb") as handle:
        try:
            # latin1: Python 2 str objects (including numpy's raw buffers) come back byte for byte.
            return cls(handle, source=str(path), encoding="latin1").load()
        except _CORRUPT_PICKLE_ERRORS as exc:
            raise C2FError(
                f"cannot read {what} {path}: not a readable pickle ({type(exc).__name__}: {exc})"
            ) from None
