"""specgenre: music genre classification from spectrograms, shaped as scikit-learn estimators.

Public names are imported lazily, so ``import specgenre`` stays fast and
does not import torch until a neural estimator is asked for.
"""

import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_LAZY = {
    # data
    "load_audio_csv": "datasets",
    "load_gtzan": "datasets",
    "load_gtzan_features": "datasets",
    "make_genre_clips": "datasets",
    "GENRES": "datasets",
    # transformers
    "AudioLoader": "audio",
    "load_audio": "audio",
    "AudioLoadError": "audio",
    "read_audio": "audio",
    "ClipSegmenter": "segment",
    "SpectrogramTransformer": "spectrogram",
    "BandStatistics": "spectrogram",
    "FeatureExtractor": "features",
    # estimators
    "XGBoostClassifier": "boosting",
    "TrackAggregator": "aggregate",
    "group_segments": "aggregate",
    "CNNClassifier": "networks",
    "ResNet18Classifier": "networks",
    "PretrainedWeightsNotFoundError": "networks",
    # transfer from musicnn (pretrained on music)
    "MusicnnEmbedding": "musicnn",
    "MusicnnClassifier": "musicnn",
    "MusicnnPatches": "musicnn",
    "top_tags": "musicnn",
    # study
    "STUDY_ROWS": "study",
    "BEYOND_ROWS": "study",
    "ALL_ROWS": "study",
    "make_row": "study",
    "select_rows": "study",
    "RECOMMENDED_ROW": "study",
    # workflow: collections of files, training, model files, judging songs, evaluation
    "Collection": "collection",
    "Waveforms": "collection",
    "load_collection": "collection",
    "load_audio_folder": "datasets",
    "TrainedModel": "training",
    "train_row": "training",
    "save_model": "modelfile",
    "load_model": "modelfile",
    "Judgement": "judging",
    "judge": "judging",
    "judge_files": "judging",
    "evaluate_row": "evaluation",
    "evaluate_rows": "evaluation",
    "format_table": "report",
    "write_results": "report",
    # collections of any size: block by block, resumable, on a Dask cluster
    "write_feature_table_files": "feature_table",
    "predict_files": "judging",
    "write_tag_table": "tagging",
    "write_embedding_table": "embedding_table",
    "map_file_blocks": "filejobs",
    # exploration
    "similar_tracks": "similarity",
    "plot_confusion_matrix": "plotting",
    "plot_spectrogram_examples": "plotting",
    "plot_embedding_map": "plotting",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'specgenre' has no attribute {name!r}") from None
    try:
        value = getattr(importlib.import_module(f"specgenre.{module}"), name)
    except ImportError as exc:
        raise AttributeError(
            f"specgenre.{name} could not be imported from specgenre.{module}: {exc}"
        ) from exc
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
