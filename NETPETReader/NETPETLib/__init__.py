"""Slicer-side helpers shared by the NETPET modules (NETPETReader, SUVQuant, StudyStats).

nodes         MRML <-> core conversions (volumes, provenance, tables, plots, views)
dependencies  the Python packages the core needs beyond Slicer's own, installed on first use without
              changing any package Slicer ships
progress      a progress dialog with cancel, as the core's progress callback (Widget side only)
widgets       the parameter-node binding, labelled choices, Reload and help links every Widget shares
DICOMPlugin   the "NETPET SUV" plugin of Slicer's DICOM browser
"""

#: the project's home page (the extension's EXTENSION_HOMEPAGE in the top-level CMakeLists.txt; a test
#: keeps the two equal), whose README documents each module
HOMEPAGE = "https://github.com/netpet-project/SlicerNETPET"
