"""Neural spectrogram classifiers (PyTorch through skorch), shaped as scikit-learn estimators.

:class:`CNNClassifier` (a small CNN) and :class:`ResNet18Classifier`
(torchvision's ResNet18, optionally ImageNet-pretrained) take float32
spectrograms ``(n, 1, freq, frames)`` such as those of
:class:`~specgenre.SpectrogramTransformer`. Importing this package imports
torch; ``import specgenre`` alone does not.
"""

from ._classifier import CNNClassifier, ResNet18Classifier
from ._weights import PretrainedWeightsNotFoundError, resnet18_weights_path

__all__ = [
    "CNNClassifier",
    "PretrainedWeightsNotFoundError",
    "ResNet18Classifier",
    "resnet18_weights_path",
]
