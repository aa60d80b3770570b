"""The project's user-facing error class.

Anything the user can fix (a missing file, a bad value, a wrong unit) raises `C2FError` with a
one-line message that names the problem. The CLI prints it without a traceback; the Blender
add-on reports it in the UI. Programming errors stay ordinary exceptions.
"""


class C2FError(Exception):
    """An error caused by the user's input or environment, with a message meant for them."""
