"""ResNet18: one-channel first convolution with folded normalisation, and ImageNet weights.

Nothing here touches the network: the weights are a seeded, randomly
initialised torchvision resnet18 written into a temporary TORCH_HOME under
the file name of torchvision's URL, and SPECGENRE_OFFLINE is set.
"""

import argparse
import hashlib
import os
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import ResNet18_Weights, resnet18
from torchvision.transforms import Normalize

from specgenre.networks import (
    PretrainedWeightsNotFoundError,
    ResNet18Classifier,
    _weights,
    resnet18_weights_path,
)
from specgenre.networks._modules import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    GrayscaleConv2d,
    ResNet18Module,
    imagenet_input_affine,
)

FILE_NAME = "resnet18-f37072fd.pth"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_resnet18_state(seed=0):
    torch.manual_seed(seed)
    model = resnet18(weights=None)
    # make BN layers non-trivial too (fresh ones are mean 0 / var 1 / weight 1 / bias 0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.state_dict()


@pytest.fixture
def cached_weights(torch_home):
    """A seeded random resnet18 state dict saved where torchvision caches IMAGENET1K_V1."""
    state = random_resnet18_state()
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / FILE_NAME)
    return state


def reference_input(x, db_range=(-80.0, 0.0)):
    """[u, u, u] normalised the torchvision way, u = (x - lo) / (hi - lo)."""
    lo, hi = db_range
    u = (x - lo) / (hi - lo)
    return Normalize(IMAGENET_MEAN, IMAGENET_STD)(u.repeat(1, 3, 1, 1))


# --------------------------------------------------------------------------
# the folded first convolution
# --------------------------------------------------------------------------

def test_imagenet_constants_match_torchvision():
    t = ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert tuple(t.mean) == IMAGENET_MEAN and tuple(t.std) == IMAGENET_STD


def test_affine_formula():
    scale, shift = imagenet_input_affine((-80.0, 0.0))
    x = torch.tensor([-80.0, -40.0, 0.0, 13.0])
    for c in range(3):
        expected = ((x + 80) / 80 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        torch.testing.assert_close(scale[c] * x + shift[c], expected)


@pytest.mark.parametrize("shape", [(2, 1, 17, 23), (3, 1, 7, 7), (1, 1, 1, 9), (2, 1, 40, 11)])
@pytest.mark.parametrize("db_range", [(-80.0, 0.0), (-120.0, 10.0)])
def test_grayscale_conv_equals_three_channel_conv(shape, db_range):
    torch.manual_seed(1)
    conv = torch.nn.Conv2d(3, 8, kernel_size=7, stride=2, padding=3, bias=False)
    x = torch.empty(shape).uniform_(-90.0, 5.0)  # a little outside the range, too
    gray = GrayscaleConv2d(conv, *imagenet_input_affine(db_range))
    expected = conv(reference_input(x, db_range))
    torch.testing.assert_close(gray(x), expected, rtol=1e-4, atol=1e-4)
    # also without normalisation: plain summed filters give conv([x, x, x])
    plain = GrayscaleConv2d(conv, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    torch.testing.assert_close(plain(x), conv(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(
        plain(x), F.conv2d(x, conv.weight.sum(1, keepdim=True), stride=2, padding=3),
        rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("channels_last", [False, True])
def test_grayscale_conv_gradients_match(channels_last):
    from specgenre.networks._modules import _channels_last

    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 4, kernel_size=3, stride=1, padding=1, bias=True)
    gray = GrayscaleConv2d(conv, *imagenet_input_affine((-80.0, 0.0)))
    x = torch.empty(2, 1, 6, 9).uniform_(-80, 0)
    # channels-last, the output's batch-summed gradient takes _AddOverBatch's NHWC route
    out = gray(_channels_last(x) if channels_last else x)
    assert (out.stride(1) == 1) == channels_last
    out.square().sum().backward()
    g1 = conv.weight.grad.clone()
    conv.weight.grad = None
    conv(reference_input(x)).square().sum().backward()
    torch.testing.assert_close(g1, conv.weight.grad, rtol=1e-4, atol=1e-3)


def test_resnet_module_equals_torchvision_on_repeated_normalised_input():
    state = random_resnet18_state(3)
    reference = resnet18(weights=None)
    reference.load_state_dict(state)
    reference.eval()
    torch.manual_seed(0)
    module = ResNet18Module(5, state_dict=state).eval()
    x = torch.empty(2, 1, 64, 50).uniform_(-80.0, 0.0)
    with torch.no_grad():
        ref = reference.avgpool(reference.layer4(reference.layer3(reference.layer2(
            reference.layer1(reference.maxpool(reference.relu(reference.bn1(
                reference.conv1(reference_input(x))))))))))
        torch.testing.assert_close(module.embed(x), torch.flatten(ref, 1), rtol=1e-3, atol=1e-4)
        # with the same final layer the logits agree too
        reference.fc = module.net.fc
        torch.testing.assert_close(module(x), reference(reference_input(x)),
                                   rtol=1e-3, atol=1e-4)
    # the first convolution holds torchvision's 3-channel weight, no data copies
    assert module.net.conv1.weight.shape == (64, 3, 7, 7)
    assert set(module.net.state_dict()) == set(reference.state_dict())


def test_freq_pool_commutes_with_input_map():
    torch.manual_seed(0)
    module = ResNet18Module(3, freq_pool=4).eval()
    x = torch.empty(2, 1, 17, 12).uniform_(-80.0, 0.0)
    pooled = F.avg_pool2d(x, (4, 1), ceil_mode=True)
    assert pooled.shape[2] == 5
    torch.testing.assert_close(pooled[:, :, -1], x[:, :, 16])  # last window: one row
    module.freq_pool = 1
    expected = module(pooled)
    module.freq_pool = 4
    torch.testing.assert_close(module(x), expected)


# --------------------------------------------------------------------------
# loading the weights
# --------------------------------------------------------------------------

def test_weights_path_follows_torch_home(torch_home):
    path, url = resnet18_weights_path()
    assert url == ResNet18_Weights.IMAGENET1K_V1.url
    assert path == os.path.join(str(torch_home), "hub", "checkpoints", FILE_NAME)
    assert url.endswith("/" + FILE_NAME)


def test_pretrained_weights_are_loaded_from_torch_home(cached_weights):
    X = np.random.default_rng(0).uniform(-80, 0, size=(12, 1, 16, 20)).astype(np.float32)
    y = np.repeat(["jazz", "rock"], 6)
    clf = ResNet18Classifier(pretrained=True, max_epochs=1, lr=1e-12, weight_decay=0.0,
                             batch_size=4, random_state=0).fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["lr"] == 1e-12
    trained = clf.net_.module_.net.state_dict()
    n_checked = 0
    for key, value in cached_weights.items():
        if key.startswith("fc.") or "running" in key or "num_batches" in key:
            continue  # new head; BN statistics are recomputed on the data after training
        torch.testing.assert_close(trained[key], value, rtol=0, atol=1e-6, msg=key)
        n_checked += 1
    assert n_checked > 50
    assert clf.predict_proba(X).shape == (12, 2)
    # from scratch the weights are torchvision's random initialisation, not the file's
    scratch = ResNet18Classifier(max_epochs=1, lr=1e-12, batch_size=4, random_state=0).fit(X, y)
    assert not torch.allclose(scratch.net_.module_.net.state_dict()["layer1.0.conv1.weight"],
                              cached_weights["layer1.0.conv1.weight"])
    assert ResNet18Classifier(pretrained=True)._effective_lr() == 1e-4


def test_missing_weights_offline_error(torch_home):
    path, url = resnet18_weights_path()
    with pytest.raises(PretrainedWeightsNotFoundError) as info:
        _weights.load_resnet18_imagenet()
    err = info.value
    assert isinstance(err, FileNotFoundError)
    msg = str(err)
    assert FILE_NAME in msg and path in msg and url in msg and "SPECGENRE_OFFLINE" in msg
    assert err.filename == path and err.url == url
    # through fit, before any training
    X = np.zeros((8, 1, 8, 8), np.float32)
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth"):
        ResNet18Classifier(pretrained=True, max_epochs=1).fit(X, np.repeat([0, 1], 4))


def test_failed_download_error(torch_home, monkeypatch):
    import urllib.error

    monkeypatch.delenv("SPECGENRE_OFFLINE")
    calls = []

    def no_network(request, *args, **kwargs):
        # torch.hub.download_url_to_file opens the URL without a timeout argument:
        # the socket default timeout is what applies
        calls.append((request.full_url, kwargs.get("timeout", socket.getdefaulttimeout())))
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    path, url = resnet18_weights_path()
    default_timeout = socket.getdefaulttimeout()
    with pytest.raises(PretrainedWeightsNotFoundError, match="downloading .* failed") as info:
        _weights.load_resnet18_imagenet()
    assert calls == [(url, _weights.DOWNLOAD_TIMEOUT)]  # one try, with a timeout
    assert socket.getdefaulttimeout() == default_timeout  # restored
    assert path in str(info.value) and url in str(info.value)
    assert not os.path.exists(path) and os.listdir(os.path.dirname(path)) == []


def test_download_checks_hash_and_is_atomic(tmp_path, torch_home, monkeypatch):
    monkeypatch.delenv("SPECGENRE_OFFLINE")
    source = tmp_path / "weights.pth"
    torch.save(random_resnet18_state(4), source)
    # the file's hash does not start with f37072fd: refused, nothing left behind
    path, _ = resnet18_weights_path()
    with pytest.raises(PretrainedWeightsNotFoundError, match="SHA-256"):
        _weights.load_resnet18_imagenet(url=source.as_uri())
    assert os.listdir(os.path.dirname(path)) == []
    # a file whose name carries its true hash prefix is accepted
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    target = tmp_path / "cache" / f"resnet18-{digest[:8]}.pth"
    _weights._download(source.as_uri(), str(target), timeout=5)
    assert target.read_bytes() == source.read_bytes()


def test_weights_file_is_read_with_weights_only(torch_home):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    # an arbitrary object (here argparse.Namespace) in the file: refused, never executed
    torch.save({"conv1.weight": argparse.Namespace(a=1)}, checkpoints / FILE_NAME)
    with pytest.raises(ValueError, match="weights_only=True") as info:
        _weights.load_resnet18_imagenet()
    assert str(checkpoints / FILE_NAME) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_tampered_weights_file_runs_no_code(torch_home, how, code_running_object):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    obj, marker = code_running_object
    payload = {"conv1.weight": obj}
    path = checkpoints / FILE_NAME
    if how == "pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    with pytest.raises(ValueError, match="is not a file of ResNet18 weights") as info:
        _weights.load_resnet18_imagenet()
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
    # through fit too
    X = np.zeros((8, 1, 8, 8), np.float32)
    with pytest.raises(ValueError, match=FILE_NAME):
        ResNet18Classifier(pretrained=True, max_epochs=1, valid_fraction=None).fit(
            X, np.repeat([0, 1], 4))
    assert not marker.exists()


def test_weights_file_of_non_tensors_is_refused(torch_home):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save({"conv1.weight": 3}, checkpoints / FILE_NAME)  # allowed types, no tensor
    with pytest.raises(ValueError, match="state dict of tensors"):
        _weights.load_resnet18_imagenet()
    (checkpoints / FILE_NAME).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="is not a file of ResNet18 weights"):
        _weights.load_resnet18_imagenet()
