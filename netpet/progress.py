"""The progress contract shared by long core functions.

A long function accepts ``progress: ProgressCallback | None``. It calls
``progress(fraction, message)`` with ``fraction`` in [0, 1]; a callback that returns True asks
for cancellation, and the function then raises :class:`Cancelled`. The command line maps the
callback to a tqdm bar, Slicer to a progress dialog.
"""

from __future__ import annotations

from typing import Callable, Optional

from netpet.errors import NetpetError

ProgressCallback = Callable[[float, str], bool]


class Cancelled(NetpetError):
    """The user cancelled a long operation through the progress callback."""


def report(progress: Optional[ProgressCallback], fraction: float, message: str) -> None:
    """Call ``progress`` if given and raise :class:`Cancelled` when it asks to stop."""
    if progress is not None and progress(min(max(fraction, 0.0), 1.0), message):
        raise Cancelled(f"Cancelled by the user during: {message}")
