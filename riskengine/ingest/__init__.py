"""Ingest: CSV and JSON Lines exports into the store, through a mapping file, resumable.

The pipeline, in the order a row goes through it:

* :mod:`~riskengine.ingest.mapping`: the mapping file (TOML or YAML): which column is which
  catalogue field, and how its text is cleaned and converted;
* :mod:`~riskengine.ingest.read`: the file read row by row, rows grouped into declarations;
* :mod:`~riskengine.ingest.convert`: a row's cells to typed values (compiled once per file);
* :mod:`~riskengine.ingest.records`: groups of rows to declarations, outcomes, controls;
* :mod:`~riskengine.ingest.batches`: converted batches, read ahead in a thread;
* :mod:`~riskengine.ingest.process`: the same in a second process (the subprocess protocol);
* :mod:`~riskengine.ingest.rejects` and :mod:`~riskengine.ingest.resume`: rejected rows and
  resuming after an interruption;
* :mod:`~riskengine.ingest.split`: declarations whose rows are apart, completed at the end;
* :mod:`~riskengine.ingest.pipeline`: :func:`ingest_file`, which stores the batches.
"""

from riskengine.ingest.mapping import (
    ConversionError,
    IngestMapping,
    MappingError,
    load_ingest_mapping,
    parse_ingest_mapping,
)
from riskengine.ingest.pipeline import IngestResult, ingest_file
from riskengine.ingest.read import detect_format
from riskengine.ingest.rejects import Reject

__all__ = [
    "ConversionError",
    "IngestMapping",
    "IngestResult",
    "MappingError",
    "Reject",
    "detect_format",
    "ingest_file",
    "load_ingest_mapping",
    "parse_ingest_mapping",
]
