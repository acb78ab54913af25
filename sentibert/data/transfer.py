"""Labelled text -> trees with a sentence label, for transferring SST-trained composition to new data.

Reads TSV, CSV or JSONL with configurable `text` and `label` columns. Each text is parsed by the parser the caller
passes in (training and evaluation pass `sentibert.parsing.parse.load_parser`, whose parses are cached on disk, so a
file is parsed once: the data layer never imports the parser) and its label goes on the root node; all other nodes
are unlabeled, so training uses the sentence-level (root) head.

Their metrics (accuracy, macro-F1, Pearson r): sentibert.evaluation.metrics.transfer_metrics.
"""
from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from sentibert.data.tree import UNLABELED, BinaryTree
from sentibert.io import TextFileError, read_lines

FILE_FORMATS = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl"}
TEXT_COLUMNS = ("text", "sentence")  # text=None: the first of these a row has (`sentence`: GLUE)


class LabelledTextError(ValueError):
    pass


def read_labelled(path: str | Path, text: str | None = "text", label: str = "label", fmt: str | None = None,
                  num_classes: int | None = None, names: Sequence[str] | None = None) -> tuple[list[str], list[int]]:
    """Rows of (text, integer label); errors name the file, the line and the column. With `num_classes`, every
    label must be one of the dataset's classes, 0 to num_classes - 1. With `names` (one per class), a label may also
    be a class name. text=None: the first of TEXT_COLUMNS a row has."""
    path = Path(path)
    fmt = fmt or FILE_FORMATS.get(path.suffix.lower())
    if fmt not in ("tsv", "csv", "jsonl"):
        raise LabelledTextError(f"{path}: unknown format {fmt or path.suffix!r}; use .tsv, .csv or .jsonl "
                                "(or set format)")
    if not path.exists():
        raise LabelledTextError(f"{path}: file not found")
    try:
        lines = read_lines(path)  # rows end at \n alone: a \r or U+2028 in a tweet never splits one silently
    except TextFileError as err:
        raise LabelledTextError(str(err)) from None
    if fmt == "jsonl":
        rows = [(n, _json_row(line, f"{path}:{n}")) for n, line in enumerate(lines, start=1) if line.strip()]
    else:  # tweets and GLUE phrases hold bare quotes: TSV is read without quoting
        quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
        reader = csv.DictReader((line + "\n" for line in lines), delimiter="\t" if fmt == "tsv" else ",",
                                quoting=quoting)
        try:
            rows = [(reader.line_num, row) for row in reader]  # line_num: a quoted field may span lines
        except csv.Error as err:  # e.g. a \r inside a field
            reason = str(err).split(" - ")[0]  # csv's hint about newline modes does not apply here
            line = reader.reader.line_num  # DictReader's own line_num lags a row behind on errors
            raise LabelledTextError(f"{path}:{line}: not a {fmt.upper()} row ({reason})") from None
    texts, labels = [], []
    for line, row in rows:
        if fmt != "jsonl" and (None in row or None in row.values()):  # DictReader's marks of too many or too few
            header = [c for c in row if c is not None]
            raise LabelledTextError(f"{path}:{line}: not a {fmt.upper()} row: {'more' if None in row else 'fewer'} "
                                    f"fields than the header's {len(header)} ({', '.join(header)})")
        column = text or next((c for c in TEXT_COLUMNS if c in row), TEXT_COLUMNS)  # the tuple: none of them
        missing = [c for c in (column, label) if c not in row]
        if missing:
            wanted = " or ".join(map(repr, missing[0])) if isinstance(missing[0], tuple) else repr(missing[0])
            raise LabelledTextError(f"{path}:{line}: no column {wanted}; columns are {sorted(row)}")
        value = str(row[label]).strip()
        if names and value in names:
            value = str(list(names).index(value))
        if not value.lstrip("-").isdigit():
            what = f"neither a class name ({', '.join(names)}) nor" if names else "not"
            raise LabelledTextError(f"{path}:{line}: label {value!r} in column {label!r} is {what} an integer class")
        if num_classes is not None and not 0 <= int(value) < num_classes:
            raise LabelledTextError(f"{path}:{line}: label {value} in column {label!r} is out of range: this "
                                    f"dataset's classes are 0-{num_classes - 1}")
        if not str(row[column]).strip():
            raise LabelledTextError(f"{path}:{line}: empty text in column {column!r}")
        texts.append(str(row[column]).strip())
        labels.append(int(value))
    return texts, labels


def _json_row(line: str, where: str) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise LabelledTextError(f"{where}: not a JSON line ({err.msg})") from None
    if not isinstance(row, dict):
        raise LabelledTextError(f"{where}: not a JSON object of columns")
    return row


def label_roots(trees: Sequence[BinaryTree], labels: Sequence[int]) -> list[BinaryTree]:
    """Put each sentence label on its tree's root; every other node is unlabeled."""
    return [replace(t, labels=(y,) + (UNLABELED,) * (len(t) - 1), word_labels=(UNLABELED,) * len(t.tokens))
            for t, y in zip(trees, labels)]


def load_labelled(path: str | Path, load_parser: Callable | None, text: str | None = "text", label: str = "label",
                  fmt: str | None = None, num_classes: int | None = None,
                  names: Sequence[str] | None = None) -> list[BinaryTree]:
    """The rows of a labelled text file as trees, each label on its root. load_parser() returns the parser (an object
    with `parse(texts, source=)`, e.g. `sentibert.parsing.parse.load_parser`); it is called only when the file has
    rows, so a bad or empty file fails before any parser loads."""
    texts, labels = read_labelled(path, text, label, fmt, num_classes, names)
    if not texts:  # nothing to parse: the parser need not load
        return []
    if load_parser is None:  # the caller's mistake, not the user's
        raise TypeError(f"{path} is labelled text: pass load_parser (e.g. sentibert.parsing.parse.load_parser)")
    trees = load_parser().parse(texts, source=str(path))
    return label_roots(trees, labels)
