"""The ``netpet`` command line (see :mod:`netpet.cli.main`)."""
