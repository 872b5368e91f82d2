"""SUVQuant's Slicer-side parts: measurement definitions with DICOM codes, the Segment Editor
effect "PET lesion" and the SegmentStatistics plugin (the last two load only inside Slicer)."""
