"""A modal progress dialog with a Cancel button, handed to the core as its progress callback.

Used by the Widgets only (it needs Qt)::

    with progressDialog("Converting") as progress:
        result = logic.loadSession(..., progress=progress)
    if progress.cancelled:
        return

The core raises ``netpet.progress.Cancelled`` when the callback returns True; the context manager
takes it (a cancel is the user's choice, not an error to report) and sets ``progress.cancelled``.

Cancel must be clickable while the core runs in the GUI thread: the callback processes all pending
events, user input included, as Slicer's own progress dialogs do (DICOMLib/DICOMWidgets.py: the
loading progress callback calls ``slicer.app.processEvents()`` and then reads ``wasCanceled``);
processing with ``QEventLoop.ExcludeUserInputEvents`` would repaint the dialog but drop the click.
The dialog is window-modal, so the clicks that reach the application in the meantime can only be the
dialog's own: the panel's buttons cannot start a second job inside the first.
"""

import contextlib

#: events are processed at most this often (s): each call still updates the value and reads Cancel
PROCESS_EVENTS_INTERVAL_S = 0.05


class _Progress:
    """The callback ``progress(fraction, message) -> cancel`` over a QProgressDialog."""

    def __init__(self, dialog, processEvents, clock):
        self.dialog = dialog
        self.cancelled = False
        self._processEvents = processEvents
        self._clock = clock
        self._last = None

    def __call__(self, fraction, message):
        self.dialog.setValue(int(1000 * max(0.0, min(1.0, float(fraction)))))
        self.dialog.setLabelText(str(message))
        now = self._clock()
        if self._last is None or now - self._last >= PROCESS_EVENTS_INTERVAL_S:
            self._last = now
            self._processEvents()  # all events: the Cancel click is one of them
        self.cancelled = self.cancelled or bool(self.dialog.wasCanceled)
        return self.cancelled


@contextlib.contextmanager
def progressDialog(title, dialog=None, processEvents=None, clock=None):
    """``dialog``, ``processEvents`` and ``clock`` default to Slicer's (injected by tests)."""
    import time

    from netpet.progress import Cancelled

    if dialog is None:
        import qt
        import slicer

        dialog = slicer.util.createProgressDialog(windowTitle=title, labelText=title, maximum=1000,
                                                  windowModality=qt.Qt.WindowModal)
        dialog.setCancelButtonText("Cancel")
        processEvents = processEvents or slicer.app.processEvents
    progress = _Progress(dialog, processEvents or (lambda: None), clock or time.monotonic)
    progress(0.0, title)
    try:
        yield progress
    except Cancelled:
        progress.cancelled = True
    finally:
        dialog.close()
