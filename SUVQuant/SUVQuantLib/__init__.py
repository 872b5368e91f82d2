"""SUVQuant's Slicer-side parts: measurement definitions with DICOM codes, the results table's columns and
the status sentences (measurements), and the SegmentStatistics plugin (loads only inside Slicer). The
Segment Editor effect is in SegmentEditorPETLesionLib (Slicer loads an effect as a module named after
its folder, so it must not share a folder with this package)."""
