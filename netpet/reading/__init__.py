"""Reader studies on the study table (issue 14): the reader's own fields, blinded reading lists and views,
consensus by adjudication.

* :mod:`netpet.reading.findings`: find one finding by a partial key, check a reader's values
  (:mod:`netpet.schema`'s checkers) and write them, retract or restore a finding, each through
  :class:`netpet.quant.table.StudyTable` and so into its audit trail; :func:`~netpet.reading.findings.blinded_rows`,
  the rows a reader may see while reading a session (the command line, SUVQuant and the browser app use it).
* :mod:`netpet.reading.lists`: per reader a reading list of sessions in a seeded random order, in rounds
  separated by a washout, two sessions of one patient apart; nothing of any result in it.
* :mod:`netpet.reading.adjudication`: the findings where readers disagree (by shared lesion id or through the
  correspondence table), and the consensus rows an adjudicator decides (reader ``consensus``, action
  ``adjudicate`` in the audit trail with every reader's values).
"""

from netpet.reading.findings import (CONSENSUS_READER, ReadingError, blinded_rows, find_finding,  # noqa: F401
                                     reader_values, record_reading, restore_finding, retract_finding)
