"""Slicer-side helpers shared by the NETPET modules (NETPETReader, SUVQuant, StudyStats).

nodes         MRML <-> core conversions (volumes, provenance, tables, plots, views)
dependencies  the Python packages the core needs beyond Slicer's own, installed on first use
progress      a progress dialog with cancel, as the core's progress callback (Widget side only)
"""
