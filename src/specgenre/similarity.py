"""Similar-track search over learned embeddings (the study's recommendation idea)."""

import numpy as np
from sklearn.neighbors import NearestNeighbors


def track_embeddings(embeddings, groups):
    """Average row embeddings per track.

    Parameters
    ----------
    embeddings : array-like of shape (n_rows, n_dims)
        One embedding per clip or per segment.
    groups : array-like of shape (n_rows,)
        Track of each row (e.g. ``clip_index`` from :meth:`ClipSegmenter.segment`
        or the ``groups`` of :func:`load_gtzan_features`).

    Returns
    -------
    track_ids : ndarray of shape (n_tracks,)
        Distinct tracks, in order of first appearance.
    track_embeddings : ndarray of shape (n_tracks, n_dims)
        Mean embedding of each track's rows.
    """
    embeddings = np.asarray(embeddings, dtype=np.float64)
    groups = np.asarray(groups)
    if embeddings.ndim != 2 or len(groups) != len(embeddings):
        raise ValueError(
            f"embeddings must be 2-D with one row per group label; got shape "
            f"{embeddings.shape} and {len(groups)} group labels."
        )
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    inverse = rank[inverse.ravel()]
    sums = np.zeros((len(order), embeddings.shape[1]))
    np.add.at(sums, inverse, embeddings)
    counts = np.bincount(inverse, minlength=len(order))[:, None]
    return groups[np.sort(first)], sums / counts


def similar_tracks(embeddings, track_ids, query, *, n_neighbors=5, metric="cosine",
                   groups=None):
    """Find the tracks nearest to a query track in an embedding space.

    The study proposed genre embeddings for recommendation: tracks whose
    CNN embeddings lie close are played next. Embeddings come from the
    ``transform`` method of :class:`CNNClassifier` / :class:`ResNet18Classifier`
    (penultimate layer), or from any other representation.

    Parameters
    ----------
    embeddings : array-like of shape (n_rows, n_dims)
        One embedding per track, or per segment when ``groups`` is given.
    track_ids : array-like of shape (n_tracks,) or (n_rows,)
        Name of each track (one per row of ``embeddings`` when ``groups`` is
        None, else ignored in favour of the distinct ``groups``; pass None then).
    query : str or sequence of str
        Track id(s) to find neighbours for.
    n_neighbors : int, default=5
        Number of neighbours to return per query (the query itself excluded).
    metric : str, default="cosine"
        Distance, as understood by :class:`sklearn.neighbors.NearestNeighbors`.
    groups : array-like of shape (n_rows,), optional
        Track of each row; rows of a track are averaged first.

    Returns
    -------
    neighbours : list of (track_id, distance) or dict
        For a single query, its ``n_neighbors`` nearest tracks, nearest first,
        with their distances (floats, unrounded).
        For several queries, a dict mapping each query to such a list.

    Examples
    --------
    >>> import numpy as np
    >>> from specgenre import similar_tracks
    >>> emb = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> (track, distance), = similar_tracks(emb, ["a", "b", "c"], "a", n_neighbors=1)
    >>> track, round(distance, 4)  # cosine distance 1 - 0.9 / sqrt(0.82)
    ('b', 0.0061)
    """
    if groups is not None:
        track_ids, embeddings = track_embeddings(embeddings, groups)
    embeddings = np.asarray(embeddings, dtype=np.float64)
    track_ids = np.asarray(track_ids)
    if embeddings.ndim != 2 or len(track_ids) != len(embeddings):
        raise ValueError(
            f"embeddings must be 2-D with one row per track id; got shape {embeddings.shape} "
            f"and {len(track_ids)} track ids."
        )
    if len(np.unique(track_ids)) != len(track_ids):
        raise ValueError("track_ids must be unique; pass groups= to average rows per track.")
    single = isinstance(query, str)
    queries = [query] if single else list(query)
    position = {t: i for i, t in enumerate(track_ids.tolist())}
    unknown = [q for q in queries if q not in position]
    if unknown:
        raise KeyError(f"unknown track id(s) {unknown}; known ids are e.g. "
                       f"{track_ids[:3].tolist()}")
    if not 1 <= n_neighbors < len(track_ids):
        raise ValueError(
            f"n_neighbors={n_neighbors} must be between 1 and the number of other tracks "
            f"({len(track_ids) - 1})."
        )
    nn = NearestNeighbors(n_neighbors=n_neighbors + 1, metric=metric).fit(embeddings)
    dist, idx = nn.kneighbors(embeddings[[position[q] for q in queries]])
    result = {}
    for q, d_row, i_row in zip(queries, dist, idx):
        pairs = [(str(track_ids[i]), float(d))
                 for d, i in zip(d_row, i_row) if i != position[q]]
        result[q] = pairs[:n_neighbors]
    return result[queries[0]] if single else result
