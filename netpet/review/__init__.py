"""Browser review and teaching app on trame-slicer: pure helpers and the app."""
