"""Track selection shared by the benchmark scripts (not a benchmark: nox's bench skips ``_*``)."""

from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".flac", ".au", ".ogg", ".mp3"}


def find_tracks(data, n_tracks):
    """Up to ``n_tracks`` audio files under ``data``, one per genre folder in turn."""
    paths = sorted(p for p in Path(data).rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    by_folder = {}
    for p in paths:
        by_folder.setdefault(p.parent.name, []).append(p)
    ordered = []
    for rank in range(max((len(v) for v in by_folder.values()), default=0)):
        ordered += [v[rank] for v in by_folder.values() if rank < len(v)]
    return [str(p) for p in ordered[:n_tracks]]
