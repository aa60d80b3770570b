"""Real captures as takes: RealSense .bag, Record3D .r3d, and DexYCB / TUM RGB-D / plain image folders.

`import_capture` writes a take folder from a capture; `open_capture_as_take` does the same into a
cache and opens the result, so commands can take a capture wherever they take a take.
"""

from c2f_core.io.capture.base import CaptureFrame, CaptureReader
from c2f_core.io.capture.convert import (
    UNDERSTOOD_LAYOUTS,
    CaptureOptions,
    ImportResult,
    default_cache_dir,
    import_capture,
    is_capture_source,
    open_capture,
    open_capture_as_take,
)

__all__ = [
    "UNDERSTOOD_LAYOUTS",
    "CaptureFrame",
    "CaptureOptions",
    "CaptureReader",
    "ImportResult",
    "default_cache_dir",
    "import_capture",
    "is_capture_source",
    "open_capture",
    "open_capture_as_take",
]
