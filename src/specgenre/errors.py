"""What the workflow tells its user: errors to stop on, warnings to read.

The workflow functions (:func:`~specgenre.load_collection`,
:func:`~specgenre.train_row`, :func:`~specgenre.judge_files`, ...) raise and
warn with these classes, in the user's words: the message names the file,
folder or argument and says what to do, never an exception class, an array
shape or an internal parameter. The ``specgenre`` command line prints them,
one line each, and nothing else of them.
"""

__all__ = [
    "CollectionError",
    "DegenerateModelWarning",
    "ShortAudioWarning",
    "SkippedFileWarning",
    "SmallDataWarning",
    "SpecgenreWarning",
]


class CollectionError(ValueError):
    """A collection of audio files cannot be used as asked (nothing was done).

    Raised for a path that does not exist, a folder with no audio in genre
    folders, a CSV file without usable rows, too few genres, or a selection
    (``genres=``, ``split=``) that leaves no track. The message names the path.
    """


class SpecgenreWarning(UserWarning):
    """Base class of the warnings of specgenre's workflow."""


class SkippedFileWarning(SpecgenreWarning):
    """An unreadable audio file was left out (named once, with the reason)."""


class ShortAudioWarning(SpecgenreWarning):
    """A file is shorter than the model's window and was padded or looped to fill it."""


class SmallDataWarning(SpecgenreWarning):
    """Some genre has too few training tracks for a model to learn it reliably."""


class DegenerateModelWarning(SpecgenreWarning):
    """A trained model predicts one genre for all of its own training tracks."""
