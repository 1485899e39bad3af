"""Kaggle's GTZAN feature tables (:func:`load_gtzan_features`)."""

import csv
import io
import os
import re
import warnings

import numpy as np
from sklearn.utils import Bunch

from ..features import FEATURE_NAMES
from ._descr import GTZAN_FEATURES_DESCR

__all__ = ["KAGGLE_FEATURE_NAMES", "load_gtzan_features"]

#: The 57 feature columns of Kaggle's ``features_30_sec.csv`` / ``features_3_sec.csv``,
#: in file order: the columns :class:`~specgenre.FeatureExtractor` computes.
KAGGLE_FEATURE_NAMES = FEATURE_NAMES

_ID_COLUMNS = ("filename", "length", "label")

# "<genre>.<5 digits>[.<segment>].<ext>"
_ROW_NAME = re.compile(r"^(?P<track>[^./\\]+\.\d{5})(?:\.(?P<seg>\d+))?\.[A-Za-z0-9]+$")


def _read_table(path):
    """Header and rows of a CSV file (BOM, CRLF/LF, ``,`` or ``;``)."""
    with open(path, encoding="utf-8-sig", newline="") as f:
        text = f.read()
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    # drop blank lines (e.g. a trailing empty line)
    rows = [(i + 1, r) for i, r in enumerate(rows) if r and any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: the file is empty (no header).")
    header = [c.strip() for c in rows[0][1]]
    return header, rows[1:]


def load_gtzan_features(csv_path, *, as_frame=False):
    """Load one of Kaggle's GTZAN feature tables.

    Reads ``features_30_sec.csv`` (one row per track) or
    ``features_3_sec.csv`` (one row per 3 s segment) of the Kaggle copy of
    GTZAN: 57 librosa features (means and variances of chroma, RMS,
    spectral shape, zero-crossing rate, 20 MFCCs, and tempo) per row. UTF-8
    with or without BOM, CRLF or LF line ends, ``,`` or ``;`` separated.

    The track of each row is returned as ``groups``: pass it to a grouped
    splitter so that the segments of one track never land on both sides of a
    split, e.g. ``StratifiedGroupKFold(5).split(b.data, b.target, b.groups)``.

    Parameters
    ----------
    csv_path : str or path-like
        Path of the CSV file.
    as_frame : bool, default=False
        If True, ``data`` is a :class:`pandas.DataFrame` of the features,
        ``target`` a :class:`pandas.Series` named ``"label"``, and ``frame``
        the whole table as a DataFrame (requires pandas), as in
        scikit-learn's loaders.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with attributes:

        data : ndarray of shape (n_rows, 57), dtype float64
            The 57 Kaggle feature columns, in Kaggle's order
            (:data:`KAGGLE_FEATURE_NAMES`); any other column is ignored with a
            warning (an index column written by pandas could leak the label).
        target : ndarray of str, shape (n_rows,)
            Genre of each row (``label`` column).
        filenames : ndarray of str, shape (n_rows,)
            The ``filename`` column (``blues.00000.wav`` or ``blues.00000.3.wav``).
        groups : ndarray of str, shape (n_rows,)
            Track id of each row (``blues.00000``).
        segment_index : ndarray of int, shape (n_rows,)
            Segment number of a 3 s row, -1 for a 30 s (whole-track) row.
        lengths : ndarray of int, shape (n_rows,)
            The ``length`` column: number of samples analysed.
        target_names : list of str
            Sorted genres.
        feature_names : list of str
            Names of the columns of ``data``.
        frame : pandas.DataFrame or None
            With ``as_frame=True``, the table (identification columns and
            the 57 features); None otherwise.
        DESCR : str
            Description of the tables and of GTZAN.

    Raises
    ------
    FileNotFoundError
        If ``csv_path`` does not exist.
    ValueError
        If columns are missing (the message names them), or a value is not a
        number (the message names the row and column), or a file name does not
        look like ``<genre>.<5 digits>[.<segment>].wav``.

    See Also
    --------
    load_gtzan : The audio files themselves.

    Examples
    --------
    >>> from sklearn.model_selection import StratifiedGroupKFold
    >>> from specgenre.datasets import load_gtzan_features
    >>> b = load_gtzan_features("features_3_sec.csv")  # doctest: +SKIP
    >>> b.data.shape  # doctest: +SKIP
    (9990, 57)
    >>> cv = StratifiedGroupKFold(n_splits=5).split(b.data, b.target, b.groups)  # doctest: +SKIP
    """
    path = os.fspath(csv_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"feature table {path!r} does not exist.")
    if os.path.isdir(path):
        raise IsADirectoryError(
            f"{path!r} is a directory; pass the CSV file itself (e.g. features_30_sec.csv)."
        )
    header, rows = _read_table(path)

    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise ValueError(f"{path}: duplicate column(s) {dupes}.")
    missing = [c for c in _ID_COLUMNS + KAGGLE_FEATURE_NAMES if c not in header]
    if missing:
        raise ValueError(
            f"{path}: missing column(s) {missing}; a GTZAN feature table (Kaggle's "
            f"features_30_sec.csv / features_3_sec.csv) has the columns {list(_ID_COLUMNS)} "
            f"and {len(KAGGLE_FEATURE_NAMES)} features."
        )
    if not rows:
        raise ValueError(f"{path}: the table has a header but no rows.")

    n_cols = len(header)
    i_file, i_len, i_label = (header.index(c) for c in _ID_COLUMNS)
    extra = [c for c in header if c not in _ID_COLUMNS and c not in KAGGLE_FEATURE_NAMES]
    if extra:
        # e.g. an index column written by pandas' to_csv: it can encode the row order,
        # hence the label, so it must never reach a classifier unnoticed
        warnings.warn(
            f"{path}: ignoring column(s) {extra}, which are not among the "
            f"{len(KAGGLE_FEATURE_NAMES)} Kaggle features.",
            UserWarning,
            stacklevel=2,
        )
    feature_names = list(KAGGLE_FEATURE_NAMES)
    feat_idx = [header.index(c) for c in feature_names]

    n = len(rows)
    data = np.empty((n, len(feat_idx)), dtype=np.float64)
    lengths = np.empty(n, dtype=np.int64)
    filenames, target, groups = [], [], []
    segment_index = np.empty(n, dtype=np.int64)
    for r, (line, row) in enumerate(rows):
        where = f"{path}, row {r + 1} (line {line})"
        if len(row) != n_cols:
            raise ValueError(f"{where}: {len(row)} fields, expected {n_cols}.")
        try:
            data[r] = [float(row[j]) for j in feat_idx]  # float() ignores spaces
        except ValueError:
            for j in feat_idx:
                try:
                    float(row[j])
                except ValueError:
                    raise ValueError(
                        f"{where}, column {header[j]!r}: {row[j].strip()!r} is not a number."
                    ) from None
        value = row[i_len].strip()
        try:
            length = float(value)
            if not length.is_integer():
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{where}, column 'length': {value!r} is not a whole number."
            ) from None
        lengths[r] = int(length)
        name = row[i_file].strip()
        match = _ROW_NAME.match(name)
        if match is None:
            raise ValueError(
                f"{where}, column 'filename': {name!r} does not look like "
                "<genre>.<5 digits>.wav or <genre>.<5 digits>.<segment>.wav."
            )
        filenames.append(name)
        groups.append(match["track"])
        segment_index[r] = -1 if match["seg"] is None else int(match["seg"])
        label = row[i_label].strip()
        if not label:
            raise ValueError(f"{where}, column 'label': empty label.")
        target.append(label)

    bunch = Bunch(
        data=data,
        target=np.array(target, dtype=str),
        filenames=np.array(filenames, dtype=str),
        groups=np.array(groups, dtype=str),
        segment_index=segment_index,
        lengths=lengths,
        target_names=sorted(set(target)),
        feature_names=feature_names,
        frame=None,
        DESCR=GTZAN_FEATURES_DESCR,
    )
    if as_frame:
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas is in the test extras
            raise ImportError(
                "load_gtzan_features(as_frame=True) requires pandas; install it with "
                "`pip install pandas` or use as_frame=False."
            ) from exc
        features = pd.DataFrame(data, columns=feature_names)
        target_s = pd.Series(bunch.target, name="label")
        columns = {}
        for c in [c for c in header if c in _ID_COLUMNS or c in KAGGLE_FEATURE_NAMES]:
            if c == "filename":
                columns[c] = bunch.filenames
            elif c == "length":
                columns[c] = lengths
            elif c == "label":
                columns[c] = bunch.target
            else:
                columns[c] = features[c].to_numpy()
        bunch.frame = pd.DataFrame(columns)
        bunch.data = features
        bunch.target = target_s
    return bunch
