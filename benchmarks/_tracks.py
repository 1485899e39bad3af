"""Track selection shared by the benchmark scripts (not a benchmark: nox's bench skips ``_*``)."""

from pathlib import Path

AUDIO_EXTENSIONS = {".wav", ".flac", ".au", ".ogg", ".mp3", ".aiff", ".aif"}


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


def repeated_tracks(data, n, folder):
    """Fill ``folder`` with ``n`` symbolic links to the tracks of ``data``, repeated.

    ``data`` is a folder of genre folders; the links keep them
    (``folder/<genre>/copyNNN_<name>``); every link is read and decoded on its
    own, so the work and memory are those of ``n`` tracks.
    """
    files = sorted(f for f in Path(data).expanduser().glob("*/*")
                   if f.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise SystemExit(f"--data {data}: no audio files in genre folders")
    for i in range(n):
        f = files[i % len(files)]
        (Path(folder) / f.parent.name).mkdir(exist_ok=True)
        (Path(folder) / f.parent.name / f"copy{i // len(files):03d}_{f.name}").symlink_to(
            f.resolve())
