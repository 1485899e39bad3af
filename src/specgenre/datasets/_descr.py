"""``DESCR`` texts of the data sets."""

_GTZAN_COMMON = """\
GTZAN (Tzanetakis & Cook, 2002) holds 1000 excerpts of 30 s, 100 in each of
ten genres: blues, classical, country, disco, hiphop, jazz, metal, pop,
reggae and rock; 22050 Hz, mono, 16 bit. It was assembled around 2000-2001
from CDs, radio and microphone recordings, and has no artist or title
metadata. It is the most used public benchmark for music genre recognition.

**Known faults**

Sturm (2012, 2013) listened to the whole data set, identified most excerpts
and catalogued its faults:

- *Repetitions*: 50 exact replicas (one of them in two classes), 22
  excerpts taken from the same recording as another one, and 13 other
  versions of the same song (Sturm, 2012).
- *Mislabelings*: 43 conspicuous and 63 contentious mislabelings, i.e.
  excerpts whose label does not fit the music.
- *Distortions*: a few excerpts with heavy clipping or dropouts, one of them
  unusable but for 5 seconds.
- *Artist effect*: some genres are dominated by few artists (35 "reggae"
  excerpts are Bob Marley, 24 "pop" excerpts Britney Spears, ...). A random
  train/test split puts the same artist, or the same recording, on both
  sides and inflates accuracy (Pampalk et al., 2005; Flexer, 2007); Sturm
  (2013) shows that the faults change how systems rank.

Reported accuracies on random splits of GTZAN are therefore optimistic. The
*fault-filtered* partition of Kereliuk, Sturm & Larsen (2015) (443 train,
197 validation, 290 test tracks; 70 faulty excerpts left out) removes the
repetitions and mislabelings and is designed to keep the excerpts of one
artist in one part; it is shipped with specgenre (``split=`` of :func:`load_gtzan`).

In the copy distributed on Kaggle ("GTZAN Dataset - Music Genre
Classification") ``genres_original/jazz/jazz.00054.wav`` is corrupt: it has
no RIFF header and cannot be decoded. Use ``on_error="skip"`` to leave it
out.

**References**

- G. Tzanetakis and P. Cook, "Musical genre classification of audio
  signals", IEEE Transactions on Speech and Audio Processing, 10(5):293-302,
  2002.
- B. L. Sturm, "An analysis of the GTZAN music genre dataset", Proc. 2nd
  ACM Workshop on Music Information Retrieval with User-Centered and
  Multimodal Strategies (MIRUM), pp. 7-12, 2012.
  doi:10.1145/2390848.2390851
- B. L. Sturm, "The GTZAN dataset: Its contents, its faults, their effects
  on evaluation, and its future use", arXiv:1306.1461, 2013.
- C. Kereliuk, B. L. Sturm and J. Larsen, "Deep learning and music
  adversaries", IEEE Transactions on Multimedia, 17(11):2059-2071, 2015.
- E. Pampalk, A. Flexer and G. Widmer, "Improvements of audio-based music
  similarity and genre classification", Proc. ISMIR, 2005.
- A. Flexer, "A closer look on artist filters for musical genre
  classification", Proc. ISMIR, 2007.
"""

GTZAN_DESCR = (
    """\
.. _gtzan_dataset:

GTZAN music genre dataset
-------------------------

**Data Set Characteristics:**

:Number of Instances: 1000 audio excerpts (100 per class)
:Number of Classes: 10
:Duration: 30 s each (a few are slightly shorter), 22050 Hz mono
:Returned: file paths and genre labels, not audio
:Layouts: Kaggle ``genres_original/<genre>/<genre>.000NN.wav``, original
          ``genres/<genre>/<genre>.000NN.au``, or any
          ``<genre>/<genre>.000NN.{wav,au,flac,ogg}`` tree

"""
    + _GTZAN_COMMON
)

GTZAN_FEATURES_DESCR = (
    """\
.. _gtzan_features_dataset:

GTZAN feature tables (Kaggle)
-----------------------------

**Data Set Characteristics:**

:Number of Instances: 1000 rows in ``features_30_sec.csv`` (one per track);
                      9990 rows in ``features_3_sec.csv`` (ten 3 s segments
                      per track, a few tracks have fewer)
:Number of Attributes: 57 numeric features: mean and variance of chroma
                       STFT, RMS, spectral centroid, bandwidth and rolloff,
                       zero-crossing rate, harmonic and percussive
                       components ("harmony", "perceptr"), 20 MFCCs, and
                       the tempo estimate; computed with librosa.
:Class: genre (``label`` column), 10 classes
:Groups: the track of each row (``blues.00000``); segments of one track
         must stay on the same side of a train/test split, use
         ``groups`` with :class:`~sklearn.model_selection.GroupKFold` or
         :class:`~sklearn.model_selection.StratifiedGroupKFold`.

The tables come with the Kaggle copy of GTZAN ("GTZAN Dataset - Music Genre
Classification", A. Olteanu). Rows of ``features_3_sec.csv`` are named
``<genre>.000NN.<S>.wav`` with ``S`` the segment index; rows of
``features_30_sec.csv`` ``<genre>.000NN.wav``. The ``length`` column is the
number of samples the features were computed on.

Randomly splitting the 3 s rows leaks segments of the same track (and the
same artist, see below) into both train and test sets, which is why many
published accuracies on this table are too high.

"""
    + _GTZAN_COMMON
)
