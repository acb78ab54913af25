"""Data: trees (tree.py), label views (labels.py), datasets on disk (datasets.py), labelled text -> trees
(transfer.py), trees -> encoder batches (spans.py)."""


class DataError(RuntimeError):
    """Data that is missing, unreachable or not what it claims to be; the message says what to do."""
