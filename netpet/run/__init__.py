"""``netpet run``: the study pipeline, sessions as work units on a local process pool or a Dask scheduler.

run_study
    The whole study from its DICOM tree: index, SUV, references, segmentation from the manifest's clicks, the study
    table (written by the driver alone), statistics and report; resumable from per-session checkpoints, with a
    machine-readable run log (netpet.run.driver).
Unit, work
    A session's work unit and the function that runs it in a worker (netpet.run.units).
"""

from netpet.lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "driver": ("run_study", "EXIT_PARTIAL"),
    "units": ("Unit", "work"),
})
