"""NETPET core: hybrid PET/CT and PET/MR quantification without Slicer.

Subpackages
-----------
netpet.dicom
    Study index of a DICOM tree and vendor-neutral SUV conversion.
netpet.cli
    The ``netpet`` command line.
"""

from netpet.errors import NetpetError

__version__ = "0.1.0"

__all__ = ["NetpetError", "__version__"]
