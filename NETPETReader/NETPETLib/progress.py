"""A modal progress dialog with a Cancel button, handed to the core as its progress callback.

Used by the Widgets only (it needs Qt): ``with progressDialog("Converting") as progress:``
``logic.loadSession(..., progress=progress)``. The core raises ``netpet.progress.Cancelled``
when the user cancels; ``slicer.util.tryWithErrorDisplay`` around the slot reports it.
"""

import contextlib


@contextlib.contextmanager
def progressDialog(title):
    import qt
    import slicer

    dialog = slicer.util.createProgressDialog(windowTitle=title, labelText=title, maximum=1000)
    dialog.setCancelButtonText("Cancel")

    def update(fraction, message):
        dialog.setValue(int(1000 * max(0.0, min(1.0, fraction))))
        dialog.setLabelText(message)
        slicer.app.processEvents(qt.QEventLoop.ExcludeUserInputEvents)
        return bool(dialog.wasCanceled)

    try:
        yield update
    finally:
        dialog.close()
