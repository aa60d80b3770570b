"""The project's user-facing error class.

Anything the user can fix (a missing file, a bad value, a wrong unit) raises `C2FError` with a
one-line message that names the problem. The CLI prints it without a traceback; the Blender
add-on reports it in the UI. Programming errors stay ordinary exceptions.
"""

import re

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_MAX_REASON_CHARS = 100


def first_sentence(text: str) -> str:
    """The first sentence of the first non-empty line of a library's message, without terminal colour
    codes and capped in length: the reason to quote in a one-line error."""
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", text).splitlines() if line.strip()]
    if not lines:
        return ""
    sentence = lines[0].split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= _MAX_REASON_CHARS else sentence[: _MAX_REASON_CHARS - 3] + "..."


class C2FError(Exception):
    """An error caused by the user's input or environment, with a message meant for them."""


class NoSpaceError(C2FError):
    """The disk (or the user's quota) filled up while writing a file.

    Not any one frame's fault: loops that record a frame's error and go on re-raise this one, so a
    run stops at once with the files already written intact (each was written atomically).
    """
