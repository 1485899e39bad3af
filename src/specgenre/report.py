"""Tabulate rows' results and write what a reader looks at next.

:func:`format_table` prints the results of :func:`specgenre.evaluation.evaluate_rows`
(accuracy, balanced accuracy and macro-F1 over folds, next to the published
figure) with numbered notes; :func:`write_results` writes that table as
``results.md`` and ``results.csv`` with each row's out-of-fold files::

    from specgenre.evaluation import evaluate_rows
    from specgenre.report import format_table, write_results
    results = evaluate_rows(["xgboost_30s"], X, y, cv=5)
    print(format_table(results))
    write_results(results, "results", skipped=[("jazz.00054.wav", "cannot decode")])
"""

import csv
import io
from pathlib import Path

import numpy as np

from .evaluation import RowResult

__all__ = ["format_table", "write_results"]


# --------------------------------------------------------------------------- tables
def _pct(x):
    return "--" if x is None or np.isnan(x) else f"{100 * x:.1f}%"


def _mean_std(mean, std, n):
    """``"60.0% +- 10.0"``, or the mean alone with fewer than two folds."""
    return _pct(mean) if n < 2 else f"{_pct(mean)} +- {100 * std:.1f}"


def _notes(results):
    """Numbered notes, each once: ``(note text, [rows])`` in order of first use."""
    notes = {}
    for r in results:
        for text in _note_texts(r):
            notes.setdefault(text, []).append(r.row)
    return list(notes.items())


def _note_texts(result):
    texts = list(result.notes)
    if result.status != "ok":
        texts.insert(0, f"{result.status}: {' '.join(result.message.split())}")
    if result.beyond_study and result.reference:
        texts.append(f"published figure: {' '.join(result.reference.split())}")
    return texts


def _note_numbers(result, notes):
    texts = _note_texts(result)
    numbers = {text: i + 1 for i, (text, _) in enumerate(notes)}
    return "".join(f"[{numbers[t]}]" for t in texts)


_HEADER = ["row", "tracks", "accuracy (mean +- std)", "balanced accuracy", "macro F1",
           "majority class", "published figure", "protocol", "notes", "seconds (CPU)"]


def _table_rows(results, notes):
    for r in results:
        if r.status == "ok":
            ours = _mean_std(r.mean, r.std, len(r.scores))
            balanced = _mean_std(r.balanced_accuracy_mean, r.balanced_accuracy_std,
                                 len(r.balanced_accuracy_scores))
            macro_f1 = _mean_std(r.macro_f1_mean, r.macro_f1_std, len(r.macro_f1_scores))
        else:
            ours, balanced, macro_f1 = r.status, "--", "--"
        figure, source = r.published
        missing = "--" if r.beyond_study else "not measured"
        published = (missing if figure is None else _pct(figure)) + f" ({source})"
        yield [r.row, str(r.n_tracks) if r.n_tracks else "--", ours, balanced, macro_f1,
               _pct(r.majority), published, r.protocol, _note_numbers(r, notes),
               f"{r.seconds:.0f} ({r.cpu_seconds:.0f})"]


def format_table(results, *, markdown=False, links=None):
    """The results as an aligned text table (or a Markdown table), then its notes.

    Each row shows the mean +- standard deviation over folds of its accuracy,
    balanced accuracy and macro-F1. Each note (why rows were skipped or
    failed, how to read a figure) is printed once, naming every row it
    applies to.

    Parameters
    ----------
    results : list of RowResult
    markdown : bool, default=False
        A Markdown table instead of aligned text.
    links : dict, optional
        ``row -> Markdown text`` of a last column (``write_results`` links
        each row's files there).

    Returns
    -------
    text : str
    """
    notes = _notes(results)
    header = list(_HEADER)
    body = [list(r) for r in _table_rows(results, notes)]
    if links is not None:
        header.append("files")
        for cells, r in zip(body, results):
            cells.append(links.get(r.row, ""))
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in r) + " |" for r in body]
    else:
        widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r).rstrip() for r in body]
    lines += ["", f"published figure: '{RowResult.STUDY_SOURCE}' is the study's accuracy on "
              "GTZAN's 1000 tracks of 10 genres under its own protocol; compare it only with "
              "a run on the same data. majority class: accuracy of always predicting the most "
              "frequent genre of the tracks used. balanced accuracy: mean recall over the "
              "genres; macro F1: mean F1 over the genres (both per fold, then mean +- std)."]
    for i, (text, rows) in enumerate(notes):
        lines.append(f"[{i + 1}] {', '.join(rows)}: {text}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- files
def _write_predictions(result, path):
    p = result.predictions
    header = ["track", "true_genre", "predicted_genre", "fold"]
    if p["segment"] is not None:
        header.insert(1, "segment")
    if p["proba"] is not None:
        header += [f"proba_{c}" for c in result.classes]
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for j in range(len(p["y_true"])):
            line = [p["track"][j], p["y_true"][j], p["y_pred"][j], p["fold"][j]]
            if p["segment"] is not None:
                line.insert(1, p["segment"][j])
            if p["proba"] is not None:
                line += [f"{v:.6g}" for v in p["proba"][j]]
            writer.writerow(line)


def _write_report(result, path):
    from sklearn.metrics import classification_report

    p = result.predictions
    unit = "segments" if p["segment"] is not None else "clips"
    labels = sorted(set(result.classes) | set(p["y_true"].tolist()))
    text = classification_report(p["y_true"], p["y_pred"], labels=labels, digits=3,
                                 zero_division=0)
    path.write_text(f"{result.row} ({result.title}): out-of-fold predictions of "
                    f"{len(p['y_true'])} {unit}; {result.protocol}\n\n{text}")


def _write_confusion(result, path):
    """Write the confusion-matrix PNG; False when matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    from .plotting import plot_confusion_matrix

    p = result.predictions
    labels = sorted(set(result.classes) | set(p["y_true"].tolist()))
    fig = Figure(figsize=(7, 6))
    unit = "segments" if p["segment"] is not None else "clips"
    plot_confusion_matrix(p["y_true"], p["y_pred"], labels=labels, ax=fig.subplots(),
                          counts=True,
                          title=f"{result.row}: {np.mean(p['y_true'] == p['y_pred']):.1%} "
                                f"of {len(p['y_true'])} {unit} (out of fold; recall, count)")
    fig.savefig(path, dpi=100)
    return True


def _skipped_section(skipped):
    """The Markdown section naming each input file that could not be read."""
    n = len(skipped)
    lines = ["", "## Skipped input files", "",
             f"{n} input file(s) could not be read, so {n} track(s) were dropped from "
             "every row (the tables above are on the tracks that remain):", ""]
    lines += [f"- `{path}`: {' '.join(str(reason).split())}" for path, reason in skipped]
    return "\n".join(lines) + "\n"


def write_results(results, out_dir, *, meta=None, skipped=()):
    """Write the results table and each row's out-of-fold files into ``out_dir``.

    Files written:

    - ``results.csv``: one line per row (:meth:`RowResult.as_dict`, plus
      ``skipped_files``, the number of input files that could not be read);
    - ``results.md``: ``meta``, the table with its notes, linking each row's
      files, then a section naming each skipped input file and why;
    - ``<row>/predictions.csv``: the out-of-fold predictions (track id, segment
      for segment-level rows, true and predicted genre, fold, class
      probabilities where the row has them);
    - ``<row>/classification_report.txt``: precision, recall and F1 per genre
      (:func:`sklearn.metrics.classification_report`);
    - ``<row>/confusion_matrix.png``: :func:`~specgenre.plot_confusion_matrix`,
      recall and count in each cell (needs matplotlib; left out without it).

    Parameters
    ----------
    results : list of RowResult
    out_dir : str or path
        Created if missing.
    meta : dict, optional
        ``name -> value`` lines written above the table in ``results.md``,
        after the tracks used and before the parameter overrides of the rows
        (both written from ``results``).
    skipped : sequence of (path, reason), default=()
        Input files that could not be read (one track each), and why: named in
        ``results.md`` and counted in ``results.csv``.

    Returns
    -------
    paths : list of Path
        Every file written, ``results.csv`` and ``results.md`` first.
    """
    skipped = [(str(path), str(reason)) for path, reason in skipped]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, links = [], {}
    for r in results:
        if r.status != "ok" or not r.predictions:
            continue
        folder = out / r.row
        folder.mkdir(exist_ok=True)
        _write_predictions(r, folder / "predictions.csv")
        _write_report(r, folder / "classification_report.txt")
        files = [("predictions", "predictions.csv"), ("report", "classification_report.txt")]
        if _write_confusion(r, folder / "confusion_matrix.png"):
            files.append(("confusion", "confusion_matrix.png"))
        written += [folder / f for _, f in files]
        links[r.row] = " ".join(f"[{label}]({r.row}/{f})" for label, f in files)

    buf = io.StringIO()
    records = [{**r.as_dict(), "skipped_files": len(skipped)} for r in results]
    writer = csv.DictWriter(buf, fieldnames=list(records[0]) if records
                            else ["row", "skipped_files"])
    writer.writeheader()
    writer.writerows(records)
    csv_path = out / "results.csv"
    csv_path.write_text(buf.getvalue())
    md_path = out / "results.md"
    applied = {}  # each override once, with the rows it was applied to
    for r in results:
        for key, value in r.params.items():
            applied.setdefault(f"{key}={value!r}", []).append(r.row)
    meta = {"tracks used": max((r.n_tracks for r in results), default=0) or "--",
            **(meta or {}), "overrides": "; ".join(
                f"{k} ({', '.join(v)})" for k, v in applied.items()) or "none"}
    header = "".join(f"- {k}: {v}\n" for k, v in meta.items())
    md_path.write_text((header + "\n" if header else "")
                       + format_table(results, markdown=True, links=links) + "\n"
                       + (_skipped_section(skipped) if skipped else ""))
    return [csv_path, md_path] + written
