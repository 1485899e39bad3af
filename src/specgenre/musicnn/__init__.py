"""musicnn (Pons & Serra, 2019) in PyTorch: the official pretrained taggers without TensorFlow.

Internal API used by the estimators:

* :func:`load_musicnn` -- one of :data:`MUSICNN_MODELS` as a ``torch.nn.Module``
  with the official weights (``pip install --no-deps musicnn``), converted once
  from the TensorFlow checkpoint and cached in the torch hub cache;
* :func:`musicnn_patches` / :func:`musicnn_patches_batch` -- the official
  extractor's input: 16 kHz, 96-band log-mel, non-overlapping 187-frame patches;
* :data:`MUSICNN_TAGS` -- tag names of each model's taggram columns.
"""

from ._checkpoint import CheckpointFormatError, read_checkpoint
from ._estimators import MusicnnEmbedding, min_clip_samples, musicnn_layers, top_tags
from ._finetune import MusicnnClassifier, MusicnnModule, MusicnnPatches
from ._frontend import (
    HOP_LENGTH,
    MIN_SAMPLES,
    MUSICNN_SR,
    N_FFT,
    N_FRAMES,
    N_MELS,
    musicnn_logmel,
    musicnn_patches,
    musicnn_patches_batch,
)
from ._models import MUSICNN_LAYERS, VGG_LAYERS, MusicnnNet, VggNet
from ._weights import (
    INSTALL_COMMAND,
    MUSICNN_MODELS,
    MUSICNN_TAGS,
    MusicnnWeightsNotFoundError,
    build_musicnn,
    convert_checkpoint,
    find_checkpoint,
    load_musicnn,
    musicnn_state_dict,
)

__all__ = [
    "MusicnnEmbedding",
    "MusicnnClassifier",
    "MusicnnModule",
    "MusicnnPatches",
    "min_clip_samples",
    "musicnn_layers",
    "top_tags",
    "CheckpointFormatError",
    "HOP_LENGTH",
    "INSTALL_COMMAND",
    "MIN_SAMPLES",
    "MUSICNN_LAYERS",
    "MUSICNN_MODELS",
    "MUSICNN_SR",
    "MUSICNN_TAGS",
    "N_FFT",
    "N_FRAMES",
    "N_MELS",
    "MusicnnNet",
    "MusicnnWeightsNotFoundError",
    "VggNet",
    "VGG_LAYERS",
    "build_musicnn",
    "convert_checkpoint",
    "find_checkpoint",
    "load_musicnn",
    "musicnn_logmel",
    "musicnn_patches",
    "musicnn_patches_batch",
    "musicnn_state_dict",
    "read_checkpoint",
]
