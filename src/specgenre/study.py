"""The study's rows: one estimator definition per reported figure.

The study compared a small CNN, ResNet18 (from scratch and ImageNet
pretrained) on dB or mel spectrograms of whole 30 s clips or of 3 s segments
combined per clip, and XGBoost on Kaggle's hand-crafted features. Each of its
twelve table rows is declared here as a :class:`StudyRow`; :func:`make_row`
builds a fresh, unfitted scikit-learn estimator for a row, so a harness can
fit and score every row the same way.

=================================  ======  ======  ======  ==========  =========
row                                input   voting  scale   pretrained  reported
=================================  ======  ======  ======  ==========  =========
cnn_30s_mel                        30 s    --      mel     no          66 %
resnet18_scratch_30s_mel           30 s    --      mel     no          71 %
resnet18_scratch_3s_mv_db          3 s     hard    dB      no          75 %
resnet18_scratch_3s_prob_db        3 s     soft    dB      no          77 %
resnet18_pretrained_30s_mel        30 s    --      mel     yes         77 %
resnet18_pretrained_3s_mv_mel      3 s     hard    mel     yes         83 %
resnet18_pretrained_3s_prob_mel    3 s     soft    mel     yes         85 %
resnet18_pretrained_3s_mv_db       3 s     hard    dB      yes         90 %
resnet18_pretrained_3s_prob_db     3 s     soft    dB      yes         89 %
xgboost_30s                        30 s    --      --      --          74 %
xgboost_3s                         3 s     --      --      --          90.4 %
xgboost_3s_mv                      3 s     hard    --      --          not run
=================================  ======  ======  ======  ==========  =========

"hard" voting is the study's "3 s + MV" (majority vote of a clip's ten 3 s
segments), "soft" its "3 s + Prob" (argmax of their mean probabilities);
both are :class:`TrackAggregator`. The ``xgboost_3s`` figure is a
segment-level accuracy under a random split of the 3 s table, so segments of
one track were trained on and tested on: it is inflated by leakage and is
not comparable with the clip-level rows.
"""

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .collection import SR  # the rows' sample rate, defined once where audio is read

__all__ = ["ALL_ROWS", "BEYOND_ROWS", "RECOMMENDED_ROW", "ROW_GROUPS", "STUDY_ROWS", "StudyRow",
           "classifier_of", "make_row", "select_rows", "STUDY_XGBOOST_PARAMS"]

#: The study's XGBoost settings (the Kaggle GTZAN notebook it followed:
#: ``XGBClassifier(n_estimators=1000, learning_rate=0.05)``, XGBoost's other
#: defaults), spelled out for :class:`XGBoostClassifier`.
STUDY_XGBOOST_PARAMS = MappingProxyType(dict(
    n_estimators=1000, learning_rate=0.05, max_depth=6, subsample=1.0,
    colsample_bytree=1.0, min_child_weight=1.0, reg_lambda=1.0, tree_method="hist",
))

_SOURCES = ("audio", "features")


@dataclass(frozen=True)
class StudyRow:
    """One row of the study's results table.

    The estimator of a row follows from its fields (see :func:`make_row`):
    ``model`` picks the classifier, ``scale`` the spectrogram, ``input`` and
    ``voting`` whether clips are cut into 3 s segments and how segment
    predictions are combined.

    Parameters
    ----------
    name : str
        Identifier, e.g. ``"resnet18_pretrained_3s_mv_db"``.
    model : {"cnn", "resnet18", "xgboost", "musicnn"}
        Classifier family (``"musicnn"``: the rows beyond the study, see ``head``).
    input : {"30s", "3s"}
        What one training sample is: a whole 30 s clip or a 3 s segment.
    voting : {None, "hard", "soft"}
        None: predictions per training sample (clip for 30 s rows, segment
        for ``xgboost_3s``); "hard": majority vote of a clip's segments
        ("3 s + MV"); "soft": argmax of their mean probability ("3 s + Prob").
    scale : {"mel", "db"} or None
        Spectrogram scale of the CNN rows (None for XGBoost, which uses the
        57 Kaggle features).
    pretrained : bool or None
        ResNet18 initialised from ImageNet weights; True for the musicnn rows
        (MSD weights); None where it does not apply. ``weights`` says which.
    study_accuracy : float or None
        Accuracy reported by the study (a fraction), None if never measured.
    protocol : str
        What the reported figure measures.
    sources : tuple of str
        Inputs :func:`make_row` can build the row for: ``"audio"`` (waveforms
        at 22050 Hz) and, for XGBoost, ``"features"`` (Kaggle's tables).
    beyond_study : bool, default=False
        True for the rows that are not the study's (:data:`BEYOND_ROWS`).
    reference_accuracy : float or None, default=None
        For a row beyond the study: the published figure it is compared with
        (a fraction), None if there is none.
    reference : str, default=""
        For a row beyond the study: where ``reference_accuracy`` comes from and
        how its recipe differs from the row's.
    level : {"clip", "segment"}, default="clip"
        What one prediction of the row is: a whole clip, or (``xgboost_3s``
        only) a 3 s segment, trained and scored without voting. :meth:`samples`
        turns clips into the row's samples.
    weights : {None, "imagenet", "musicnn"}, default=None
        Pretrained weights the row's estimator loads when fitted: ImageNet's
        ResNet18 (the pretrained ResNet18 rows), MSD_musicnn (the rows beyond
        the study), or none. A harness loads them once before fitting any
        fold. For ResNet18 the built estimator's own
        ``ResNet18Classifier.pretrained`` has the last word, since an override
        (``pretrained=True``) can change it.
    head : {None, "svm", "pca_svm", "probe", "finetune"}, default=None
        For the musicnn rows only: ``"svm"``, an RBF SVM trained on the fixed
        musicnn ``max_pool`` embedding (:class:`MusicnnEmbedding`,
        standardised); ``"pca_svm"``, the same SVM on the embedding reduced by
        PCA to at most 128 whitened dimensions (Pons & Serra's recipe);
        ``"probe"``, a logistic regression on the standardised
        ``penultimate`` embedding (a linear probe); ``"finetune"``, the
        network itself fine-tuned with a new output layer
        (:class:`MusicnnClassifier` on :class:`MusicnnPatches`). None for the
        study's rows, whose classifier is ``model`` itself.
    predict_is_proba_argmax : bool, default=False
        True when the estimator's ``predict`` is the argmax of its
        ``predict_proba`` (the networks, XGBoost, soft voting), so a harness
        that needs both computes the probabilities only. False where that is
        not so, or not known (e.g. an SVM, whose probabilities are calibrated
        apart from its decision function). Only read when the estimator has
        ``predict_proba``.
    hop_seconds : float or None, default=None
        For a voting row: the 3 s segments start every ``hop_seconds``
        (``ClipSegmenter(3.0, hop_seconds=...)``: 28 overlapping segments of a
        30 s clip for 1.0); None, non-overlapping (ten per 30 s clip).
    class_weight : {None, "balanced"}, default=None
        The row's default class weighting (see :func:`make_row`): None for the
        study's rows (as the study ran them), ``"balanced"`` for the rows
        beyond the study.
    """

    name: str
    model: str
    input: str
    voting: str | None
    scale: str | None
    pretrained: bool | None
    study_accuracy: float | None
    protocol: str
    sources: tuple = ("audio",)
    beyond_study: bool = False
    reference_accuracy: float | None = None
    reference: str = ""
    level: str = "clip"
    weights: str | None = None
    head: str | None = None
    predict_is_proba_argmax: bool = False
    hop_seconds: float | None = None
    class_weight: str | None = None

    @property
    def recommended(self):
        """True for the row a user should start from (:data:`RECOMMENDED_ROW`)."""
        return self.name == RECOMMENDED_ROW

    @property
    def title(self):
        """Short human-readable name, e.g. ``"ResNet18 pretrained, 3 s + MV, dB"``."""
        model = {"cnn": "CNN", "resnet18": "ResNet18", "xgboost": "XGBoost",
                 "musicnn": "musicnn MSD"}[self.model]
        if self.pretrained is not None and self.model == "resnet18":
            model += " pretrained" if self.pretrained else " scratch"
        if self.model == "musicnn":
            model += {"finetune": " fine-tuned", "svm": " embedding + SVM",
                      "pca_svm": " embedding + PCA + SVM",
                      "probe": " penultimate + logistic regression"}[self.head]
        how = "30 s" if self.input == "30s" else "3 s"
        if self.hop_seconds is not None:
            how += f" every {self.hop_seconds:g} s"
        how += {None: "", "hard": " + MV", "soft": " + Prob"}[self.voting]
        parts = [model, how] + ([{"mel": "mel", "db": "dB"}[self.scale]] if self.scale else [])
        return ", ".join(parts)

    def make(self, **kwargs):
        """Build this row's estimator: ``make_row(self.name, **kwargs)``."""
        return make_row(self.name, **kwargs)

    def samples(self, X, y=None):
        """What this row is trained and scored on, made from whole clips.

        A clip-level row takes the clips as they are. A segment-level row
        (``level="segment"``) takes their 3 s segments, each labelled with its
        clip's genre (a :class:`~sklearn.pipeline.Pipeline` cannot change the
        number of labels, so this happens outside the estimator). Both
        ``specgenre reproduce`` and ``specgenre train`` call this; cut the
        training and test clips separately so that no test segment is trained on.

        Parameters
        ----------
        X : ndarray of shape (n_clips, n_samples)
            Waveforms at 22050 Hz.
        y : array-like of shape (n_clips,), optional
            Genres of the clips.

        Returns
        -------
        X_samples : ndarray
            ``X`` itself, or the segments ``(n_segments, n_segment_samples)``.
        y_samples : ndarray or None
            The label of each sample (None when ``y`` is None).
        clip_index : ndarray of int
            Position in ``X`` of the clip each sample comes from.
        """
        y = None if y is None else np.asarray(y)
        if self.level == "clip":
            return X, y, np.arange(len(X))
        from .segment import ClipSegmenter

        segments, clip_index = ClipSegmenter(3.0, sr=SR,
                                             hop_seconds=self.hop_seconds).fit_segment(X)
        clip_index = np.asarray(clip_index)
        return segments, None if y is None else y[clip_index], clip_index


_CLIP = "clip-level accuracy, one prediction per 30 s clip"
_MV = ("clip-level accuracy: majority vote of the predictions for the clip's ten 3 s "
       "segments (ties broken by summed probability)")
_PROB = ("clip-level accuracy: argmax of the mean class probabilities of the clip's ten "
         "3 s segments")


def _neural(name, model, input, voting, scale, pretrained, acc):
    protocol = {None: _CLIP, "hard": _MV, "soft": _PROB}[voting]
    return StudyRow(name, model, input, voting, scale, pretrained, acc, protocol, ("audio",),
                    weights="imagenet" if pretrained else None, predict_is_proba_argmax=True)


_ROWS = [
    _neural("cnn_30s_mel", "cnn", "30s", None, "mel", None, 0.66),
    _neural("resnet18_scratch_30s_mel", "resnet18", "30s", None, "mel", False, 0.71),
    _neural("resnet18_scratch_3s_mv_db", "resnet18", "3s", "hard", "db", False, 0.75),
    _neural("resnet18_scratch_3s_prob_db", "resnet18", "3s", "soft", "db", False, 0.77),
    _neural("resnet18_pretrained_30s_mel", "resnet18", "30s", None, "mel", True, 0.77),
    _neural("resnet18_pretrained_3s_mv_mel", "resnet18", "3s", "hard", "mel", True, 0.83),
    _neural("resnet18_pretrained_3s_prob_mel", "resnet18", "3s", "soft", "mel", True, 0.85),
    _neural("resnet18_pretrained_3s_mv_db", "resnet18", "3s", "hard", "db", True, 0.90),
    _neural("resnet18_pretrained_3s_prob_db", "resnet18", "3s", "soft", "db", True, 0.89),
    StudyRow(
        "xgboost_30s", "xgboost", "30s", None, None, None, 0.74,
        "clip-level accuracy of XGBoost on the 57 features of whole 30 s clips "
        "(Kaggle's features_30_sec.csv)",
        ("audio", "features"), predict_is_proba_argmax=True,
    ),
    StudyRow(
        "xgboost_3s", "xgboost", "3s", None, None, None, 0.904,
        "segment-level accuracy on a random split of the rows of Kaggle's "
        "features_3_sec.csv (the Kaggle notebook's train_test_split(test_size=0.3, "
        "random_state=42)): segments of one track are both trained on and tested on, "
        "so the figure is inflated by leakage; not comparable with clip-level rows",
        ("audio", "features"), level="segment", predict_is_proba_argmax=True,
    ),
    StudyRow(
        "xgboost_3s_mv", "xgboost", "3s", "hard", None, None, None,
        "never measured by the study: clip-level accuracy of the majority vote of the "
        "XGBoost predictions for a clip's 3 s segments, split by track",
        ("audio", "features"), predict_is_proba_argmax=True,
    ),
]

#: The study's rows in table order: ``name -> StudyRow`` (read-only).
STUDY_ROWS = MappingProxyType({row.name: row for row in _ROWS})

# ------------------------------------------------------- beyond the study
# Rows the study did not have: transfer from a network pretrained on music
# (musicnn, :mod:`specgenre.musicnn`). Their ``study_accuracy`` is None; the
# figure they are compared with is ``reference_accuracy``, from ``reference``.

_PONS = (
    "Pons & Serra, sklearn-audio-transfer-learning (github.com/jordipons/"
    "sklearn-audio-transfer-learning, README and src/audio_transfer_learning.py): "
    "77.24 % on GTZAN's fault-filtered test split with MSD_musicnn max_pool "
    "embeddings of 3 s patches taken every 1 s, PCA to 128 whitened dimensions, "
    "SVC(C=1, kernel='rbf', gamma='scale') trained per patch, majority vote of a "
    "track's patches. "
)
_BALANCED = (" Class weighting: class_weight='balanced' (weights 1 on a balanced training set, "
             "so the same model there).")
_PROBE = (
    "No published GTZAN figure for this probe. It is the recipe of the official musicnn "
    "extractor's MSD_musicnn penultimate embedding (TensorFlow) + StandardScaler + "
    "LogisticRegression(class_weight='balanced') that specgenre issue 17 measured on 340 "
    "real GTZAN tracks this project does not hold (unbalanced, 3-fold CV by track): 92.6 % "
    "accuracy, 0.754 balanced accuracy; this row computes the same embedding with the "
    "converted weights in torch."
)
_PONS_MV = ("clip-level accuracy: majority vote of the predictions for the clip's 3 s "
            "patches taken every 1 s (28 per 30 s clip; a tie goes to the genre first in "
            "sorted order, as the recipe's argmax of vote counts does)")
_BEYOND = [
    StudyRow(
        "musicnn_msd_svm_30s", "musicnn", "30s", None, None, True, None,
        "clip-level accuracy of an RBF SVM on the MSD_musicnn max_pool embedding of "
        "each 30 s clip (mean over its ten non-overlapping 3 s patches), standardised",
        ("audio",), beyond_study=True, reference_accuracy=0.7724,
        reference=_PONS + "This row: one embedding per clip (mean over non-overlapping "
        "patches) and StandardScaler instead of per-patch training and PCA whitening "
        "(musicnn_msd_pons_3s_mv is the faithful recipe)." + _BALANCED,
        weights="musicnn", head="svm", class_weight="balanced",
    ),
    StudyRow(
        "musicnn_msd_3s_mv", "musicnn", "3s", "hard", None, True, None, _MV,
        ("audio",), beyond_study=True, reference_accuracy=0.7724,
        reference=_PONS + "This row: per-segment training and majority vote, but "
        "non-overlapping 3 s segments and StandardScaler instead of PCA whitening "
        "(musicnn_msd_pons_3s_mv is the faithful recipe)." + _BALANCED,
        weights="musicnn", head="svm", class_weight="balanced",
    ),
    StudyRow(
        "musicnn_msd_3s_prob", "musicnn", "3s", "soft", None, True, None, _PROB,
        ("audio",), beyond_study=True, reference_accuracy=None,
        reference="No published figure for this recipe (soft vote of per-segment SVM "
        "probabilities, Platt-scaled by CalibratedClassifierCV). Closest: " + _PONS
        + _BALANCED.strip(),
        weights="musicnn", head="svm", predict_is_proba_argmax=True,
        class_weight="balanced",
    ),
    StudyRow(
        "musicnn_finetune_3s_prob", "musicnn", "3s", "soft", None, True, None, _PROB,
        ("audio",), beyond_study=True, reference_accuracy=None,
        reference="No published GTZAN figure for fine-tuning MSD_musicnn under this "
        "protocol; the embedding + SVM rows are its baseline." + _BALANCED,
        weights="musicnn", head="finetune", predict_is_proba_argmax=True,
        class_weight="balanced",
    ),
    StudyRow(
        "musicnn_msd_probe_30s", "musicnn", "30s", None, None, True, None,
        "clip-level accuracy of a logistic regression on the standardised MSD_musicnn "
        "penultimate embedding of each 30 s clip (mean over its ten non-overlapping 3 s "
        "patches): a linear probe",
        ("audio",), beyond_study=True, reference_accuracy=None, reference=_PROBE + _BALANCED,
        weights="musicnn", head="probe", predict_is_proba_argmax=True,
        class_weight="balanced",
    ),
    StudyRow(
        "musicnn_msd_pons_3s_mv", "musicnn", "3s", "hard", None, True, None, _PONS_MV,
        ("audio",), beyond_study=True, reference_accuracy=0.7724,
        reference=_PONS + "This row is that recipe: per-patch MSD_musicnn max_pool "
        "embeddings of 3 s patches every 1 s, PCA to min(128, n_training_patches - 1, 753) "
        "whitened dimensions, SVC(C=1, kernel='rbf', gamma='scale') per patch, majority "
        "vote; on the fault-filtered split (specgenre reproduce --split filtered) the "
        "comparison is like for like." + _BALANCED,
        weights="musicnn", head="pca_svm", hop_seconds=1.0, class_weight="balanced",
    ),
]

#: Rows beyond the study (transfer from musicnn), in table order:
#: ``name -> StudyRow`` with ``beyond_study=True`` (read-only).
BEYOND_ROWS = MappingProxyType({row.name: row for row in _BEYOND})

#: Every row :func:`make_row` builds: the study's twelve first, then
#: :data:`BEYOND_ROWS` (read-only).
ALL_ROWS = MappingProxyType({**STUDY_ROWS, **BEYOND_ROWS})

#: The row a user should start from: ``specgenre rows`` marks it, ``--rows
#: recommended`` selects it and ``specgenre train`` uses it when no row is
#: given. Chosen on the 51 dev tracks by the rule in the user guide
#: ("Rows beyond the study on unbalanced data"): the highest mean balanced
#: accuracy of 3-fold CV by track (``evaluate_rows(..., cv=3,
#: random_state=0)``), ties broken by mean accuracy, among the rows beyond
#: the study with their default class weighting; never on a held-out test set.
RECOMMENDED_ROW = "musicnn_msd_probe_30s"

#: Names :func:`select_rows` accepts besides row names: ``group -> row names``
#: (read-only). "study": the study's twelve; "beyond": the rows beyond it;
#: "all": both; "recommended": :data:`RECOMMENDED_ROW`.
ROW_GROUPS = MappingProxyType({
    "study": tuple(STUDY_ROWS),
    "beyond": tuple(BEYOND_ROWS),
    "all": tuple(ALL_ROWS),
    "recommended": (RECOMMENDED_ROW,),
})


def select_rows(names=None):
    """Row names from names and groups, in order, each once.

    What ``specgenre reproduce --rows`` takes.

    Parameters
    ----------
    names : str, iterable of str or None, default=None
        Row names (keys of :data:`ALL_ROWS`) and groups (keys of
        :data:`ROW_GROUPS`: ``"study"``, ``"beyond"``, ``"all"``,
        ``"recommended"``), mixed freely. A single string is one name. None or
        empty: the study's rows (``"study"``).

    Returns
    -------
    rows : list of str
        Row names, in the order given (a group's rows in table order), without
        repeats.

    Raises
    ------
    ValueError
        Naming each unknown name, with the rows and groups to choose from.

    Examples
    --------
    >>> from specgenre.study import RECOMMENDED_ROW, select_rows
    >>> select_rows(["xgboost_30s", "study"])[:2]
    ['xgboost_30s', 'cnn_30s_mel']
    >>> select_rows("recommended") == [RECOMMENDED_ROW]
    True
    """
    if names is None:
        names = ["study"]
    elif isinstance(names, str):
        names = [names]
    names = list(names) or ["study"]
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"rows: expected row names or groups (str); got {name!r}.")
    unknown = [name for name in names if name not in ALL_ROWS and name not in ROW_GROUPS]
    if unknown:
        raise ValueError(
            f"unknown row(s) {', '.join(map(repr, unknown))}; choose from the rows "
            f"{', '.join(ALL_ROWS)} or the groups {', '.join(ROW_GROUPS)}.")
    rows = [row for name in names for row in ROW_GROUPS.get(name, (name,))]
    return list(dict.fromkeys(rows))


def classifier_of(estimator):
    """The classifier inside a row's estimator, through TrackAggregator and Pipeline.

    Parameters
    ----------
    estimator : scikit-learn estimator
        As built by :func:`make_row`.

    Returns
    -------
    classifier : scikit-learn estimator
        The last step of the (inner) pipeline, e.g. the
        :class:`ResNet18Classifier` of ``resnet18_scratch_3s_mv_db``;
        ``estimator`` itself when it is neither a pipeline nor a meta-estimator.

    Examples
    --------
    >>> from specgenre.study import classifier_of, make_row
    >>> type(classifier_of(make_row("xgboost_3s_mv"))).__name__
    'XGBoostClassifier'
    """
    while True:
        if hasattr(estimator, "steps"):
            estimator = estimator.steps[-1][1]
        elif "estimator" in estimator.get_params(deep=False):
            estimator = estimator.estimator
        else:
            return estimator


def _set_n_jobs(estimator, n_jobs):
    if n_jobs is not None and "n_jobs" in estimator.get_params(deep=False):
        estimator.set_params(n_jobs=n_jobs)
    return estimator


def _classifier(row, random_state, n_jobs):
    if row.model == "xgboost":
        from .boosting import XGBoostClassifier

        return XGBoostClassifier(**STUDY_XGBOOST_PARAMS, random_state=random_state,
                                 n_jobs=n_jobs)
    if row.head == "probe":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000, random_state=random_state)
    if row.head in ("svm", "pca_svm"):
        from sklearn.svm import SVC

        # the anchor's SVM (Pons & Serra)
        svm = SVC(C=1.0, kernel="rbf", gamma="scale", random_state=random_state)
        if row.voting != "soft":
            return svm
        from sklearn.calibration import CalibratedClassifierCV

        # probabilities for the soft vote: Platt scaling (sigmoid) of the SVM's
        # decisions, learnt on 5-fold cross-validated decisions, one SVM refitted on
        # all segments (what SVC(probability=True) did inside libsvm)
        return CalibratedClassifierCV(svm, method="sigmoid", ensemble=False)
    # the package's public (lazily imported) names, wherever the module lives
    import specgenre

    if row.model == "cnn":
        clf = specgenre.CNNClassifier(random_state=random_state)
    elif row.head == "finetune":
        clf = specgenre.MusicnnClassifier("MSD_musicnn", random_state=random_state)
    else:
        clf = specgenre.ResNet18Classifier(pretrained=row.pretrained, random_state=random_state)
    return _set_n_jobs(clf, n_jobs)


def make_row(name, *, source="audio", random_state=None, n_jobs=None, **overrides):
    """Build a fresh, unfitted estimator for one of the study's rows.

    Parameters
    ----------
    name : str
        A key of :data:`ALL_ROWS`: one of the study's rows (:data:`STUDY_ROWS`)
        or of the rows beyond it (:data:`BEYOND_ROWS`).
    source : {"audio", "features"}, default="audio"
        What the estimator takes:

        - ``"audio"``: waveforms ``(n_clips, n_samples)`` at 22050 Hz (30 s
          GTZAN clips; :func:`load_gtzan`). 30 s rows are a
          :class:`~sklearn.pipeline.Pipeline` of a
          :class:`SpectrogramTransformer` (or :class:`FeatureExtractor`
          for XGBoost) and the classifier; 3 s rows with voting wrap that
          pipeline in a :class:`TrackAggregator` with ``ClipSegmenter(3.0)``.
          ``xgboost_3s`` has no voting: it is the 30 s pipeline, to be fed
          3 s segments (``ClipSegmenter(3.0).fit_segment(clips)`` and the
          clips' labels repeated by ``clip_index``), since a pipeline cannot
          change the number of rows of ``y``.
        - ``"features"`` (XGBoost rows only): Kaggle's tables
          (:func:`load_gtzan_features`). ``xgboost_30s`` and ``xgboost_3s``
          are an :class:`XGBoostClassifier` on the table's rows;
          ``xgboost_3s_mv`` is ``TrackAggregator(XGBoostClassifier(),
          segmenter="precomputed")``, fed ``group_segments(X, y, groups)``
          of the 3 s table so that splits are by track.

        The musicnn embedding rows (``head="svm"``) are a Pipeline of
        :class:`MusicnnEmbedding`, :class:`~sklearn.preprocessing.StandardScaler`
        and :class:`~sklearn.svm.SVC` (``"svm"``), the SVC wrapped in
        ``CalibratedClassifierCV(SVC(...), ensemble=False)`` for the soft vote
        of ``musicnn_msd_3s_prob`` (Platt-scaled probabilities); the probe
        (``head="probe"``) is ``MusicnnEmbedding(layer="penultimate")``,
        ``StandardScaler`` and ``LogisticRegression`` (``"logreg"``); Pons &
        Serra's recipe (``head="pca_svm"``) is the ``max_pool`` embedding,
        PCA to ``min(128, n_samples - 1, n_features)`` whitened dimensions
        (``"pca"``) and the SVC; the fine-tuned row (``head="finetune"``) is a
        Pipeline of :class:`~specgenre.musicnn.MusicnnPatches` and
        :class:`MusicnnClassifier` (``"musicnn"``); 3 s rows wrap them in a
        :class:`TrackAggregator` as above, cutting segments every
        ``row.hop_seconds`` when the row declares it (1 s for
        ``musicnn_msd_pons_3s_mv``).
    random_state : int, RandomState instance or None, default=None
        Seed of the classifier.
    n_jobs : int or None, default=None
        Workers/threads of the steps that have an ``n_jobs`` parameter.
    **overrides
        Parameters of the estimator: a plain name (``n_estimators=200``,
        ``device="cuda"``, ``max_epochs=5``) goes to the classifier
        (:func:`classifier_of`: the SVC inside a calibration wrapper); a name
        with ``__`` is set on the whole estimator (e.g.
        ``estimator__spectrogram__n_mels=96`` for a 3 s row).

        ``class_weight`` is such a plain name, taken by every row's
        classifier: None (each training sample counts once) or
        ``"balanced"`` (scikit-learn's meaning: a sample of class ``c``
        weighs ``n_samples / (n_classes * n_samples_of_c)``, computed from
        the training labels the classifier is given). A row's default is its
        :attr:`StudyRow.class_weight`: None for the study's rows,
        ``"balanced"`` for the rows beyond it; pass ``class_weight=None`` to
        turn it off. In a 3 s voting row the classifier is trained on
        segments that carry their clip's label, so its weights are computed
        per segment; when every clip has the same number of segments (all
        clips of one length, as :meth:`~specgenre.Collection.load` makes
        them), those are exactly the clip-level balanced weights.

    Returns
    -------
    estimator : scikit-learn classifier
        Unfitted. XGBoost uses the study's settings
        (:data:`STUDY_XGBOOST_PARAMS`); the neural classifiers their own
        defaults.

    Examples
    --------
    >>> from specgenre import make_row
    >>> est = make_row("xgboost_3s_mv", source="features", n_estimators=100)
    >>> type(est).__name__, est.get_params()["estimator__n_estimators"]
    ('TrackAggregator', 100)
    """
    try:
        row = ALL_ROWS[name]
    except KeyError:
        raise ValueError(
            f"unknown study row {name!r}; choose one of {list(ALL_ROWS)}."
        ) from None
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {_SOURCES}; got {source!r}.")
    if source not in row.sources:
        raise ValueError(
            f"row {name!r} has no {source!r} variant (it takes {list(row.sources)}): "
            "only the XGBoost rows run from Kaggle's feature tables."
        )
    from sklearn.pipeline import Pipeline

    from .aggregate import TrackAggregator

    plain = {k: v for k, v in overrides.items() if "__" not in k}
    nested = {k: v for k, v in overrides.items() if "__" in k}
    clf = _classifier(row, random_state, n_jobs)
    if row.class_weight is not None:
        plain = {"class_weight": row.class_weight, **plain}
    if plain:
        classifier_of(clf).set_params(**plain)

    if source == "features":
        est = clf
        if row.voting is not None:
            est = TrackAggregator(clf, segmenter="precomputed", voting=row.voting)
    else:
        if row.head == "finetune":
            from .musicnn import MusicnnPatches

            front = ("patches", _set_n_jobs(MusicnnPatches(sr=SR), n_jobs))
        elif row.head in ("svm", "pca_svm", "probe"):
            from .musicnn import MusicnnEmbedding

            layer = "penultimate" if row.head == "probe" else "max_pool"
            front = ("embedding",
                     _set_n_jobs(MusicnnEmbedding("MSD_musicnn", layer=layer), n_jobs))
        elif row.model == "xgboost":
            from .features import FeatureExtractor

            front = ("features", _set_n_jobs(FeatureExtractor(), n_jobs))
        else:
            from .spectrogram import SpectrogramTransformer

            front = ("spectrogram",
                     _set_n_jobs(SpectrogramTransformer(scale=row.scale, sr=SR), n_jobs))
        if row.head in ("svm", "probe"):
            from sklearn.preprocessing import StandardScaler

            est = Pipeline([front, ("scaler", StandardScaler()),
                            ("logreg" if row.head == "probe" else "svm", clf)])
        elif row.head == "pca_svm":
            from ._capped_pca import CappedPCA

            est = Pipeline([front, ("pca", CappedPCA(128, whiten=True,
                                                     random_state=random_state)),
                            ("svm", clf)])
        else:
            est = Pipeline([front, (row.model, clf)])
        if row.voting is not None:
            from .segment import ClipSegmenter

            est = TrackAggregator(
                est, segmenter=ClipSegmenter(3.0, sr=SR, hop_seconds=row.hop_seconds),
                voting=row.voting)
    if nested:
        est.set_params(**nested)
    return est
