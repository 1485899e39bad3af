"""Reference outputs of the OFFICIAL musicnn code (TensorFlow) for the PyTorch port's equality test.

Run with an interpreter that has the official stack (not the project's venv)::

    python3 -m venv /work/tfenv
    /work/tfenv/bin/pip install tensorflow-cpu tf-keras librosa soundfile
    /work/tfenv/bin/pip install --no-deps musicnn
    TF_USE_LEGACY_KERAS=1 /work/tfenv/bin/python tests/reference/make_musicnn_reference.py

What it does, per dev track (a few GTZAN FLAC files of ``--data``):

* the input patches come from the official ``musicnn.extractor.batch_data``
  (``librosa.load(file, sr=16000)``, mel power, float16, log10(10000 x + 1),
  187-frame patches without overlap), with ONE change: ``10000 * audio_rep``
  is made a float32 multiply (``audio_rep.astype(np.float32)``), which is what
  numpy 1.x did; under numpy 2 the float16 product overflows to inf. The
  change is made on the function's own source text (asserted to apply);
* every named output of the official graph (``musicnn.models.define_model``,
  restored from the checkpoint in the installed package exactly as
  ``musicnn.extractor.extractor`` does, ``is_training=False``) is evaluated
  one patch at a time (the extractor's batch size 1) for the first
  ``--patches`` patches. The extractor's own loop is not used: it repeats the
  first patch's cnn1-3 for later patches (it concatenates ``cnn1_`` instead
  of ``midend1_``).

To keep the file small (< 3 MB), outputs with more than ``--max-values``
values per patch (timbral, temporal, cnn1-3, vgg's pool1-4) are stored at a
fixed random subset of their flat positions (the same for every patch; the
positions are stored too); the others are stored whole. Everything is float32
in one compressed ``.npz``:

* ``tracks`` (names), ``patch_track`` (track of each stored patch),
  ``patch_index`` (its index in the track), ``n_patches`` (patches per track
  in the official batching), ``n_frames`` (frames of each track's log-mel);
* ``patches``: the official input patches, ``(n, 187, 96)``;
* ``<model>/<layer>``: ``(n, k)`` values, ``<model>/<layer>/positions``:
  the flat positions ``k`` within one patch's output (of shape
  ``<model>/<layer>/shape``), for every model and layer;
* ``versions``: tensorflow, numpy, librosa and musicnn versions used.
"""

import argparse
import importlib.metadata
import inspect
import os
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TRACKS = ("blues/blues.00000.flac", "classical/classical.00000.flac",
                  "metal/metal.00000.flac")
MODELS = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
MUSICNN_LAYERS = ("taggram", "timbral", "temporal", "cnn1", "cnn2", "cnn3",
                  "mean_pool", "max_pool", "penultimate")
VGG_LAYERS = ("taggram", "pool1", "pool2", "pool3", "pool4", "pool5")


def fixed_batch_data():
    """The official ``batch_data`` with its multiply done in float32 (numpy-1 semantics)."""
    from musicnn import extractor

    source = textwrap.dedent(inspect.getsource(extractor.batch_data))
    old = "np.log10(10000 * audio_rep + 1)"
    new = "np.log10(10000 * audio_rep.astype(np.float32) + 1)"
    if source.count(old) != 1:
        raise RuntimeError("the official batch_data changed: cannot apply the float32 fix")
    namespace = dict(vars(extractor))
    exec(compile(source.replace(old, new), extractor.__file__, "exec"), namespace)
    return namespace["batch_data"]


def official_graph(model):
    """Build the official graph for ``model`` and restore its checkpoint, as the extractor does."""
    import tensorflow as tf
    from musicnn import configuration as config
    from musicnn import extractor, models

    labels = config.MTT_LABELS if "MTT" in model else config.MSD_LABELS
    tf.compat.v1.reset_default_graph()
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, 187, config.N_MELS])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, len(labels))
        normalized_y = tf.nn.sigmoid(outputs[0])
    names = VGG_LAYERS if "vgg" in model else MUSICNN_LAYERS
    tensors = dict(zip(names, (normalized_y,) + tuple(outputs[1:]), strict=True))
    sess = tf.compat.v1.Session()
    sess.run(tf.compat.v1.global_variables_initializer())
    saver = tf.compat.v1.train.Saver()
    saver.restore(sess, os.path.dirname(extractor.__file__) + "/" + model + "/")
    return sess, x, is_training, tensors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "gtzan_dev"))
    parser.add_argument("--tracks", nargs="+", default=list(DEFAULT_TRACKS))
    parser.add_argument("--patches", type=int, default=2, help="patches per track")
    parser.add_argument("--max-values", type=int, default=4096,
                        help="store at most this many values per patch of each output")
    parser.add_argument("--out", default=str(REPO / "tests" / "data" / "musicnn_reference.npz"))
    args = parser.parse_args(argv)

    import tensorflow as tf

    # the official models.py uses tf.compat.v1.layers, each call warns about deprecation
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(musicnn|tf_keras)")

    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)
    batch_data = fixed_batch_data()
    rng = np.random.default_rng(20191101)

    out = {"tracks": np.array(args.tracks)}
    patches, patch_track, patch_index, n_patches, n_frames = [], [], [], [], []
    for t, track in enumerate(args.tracks):
        batch, audio_rep = batch_data(os.path.join(args.data, track), 187, 187)
        if not np.all(np.isfinite(batch)):
            raise RuntimeError(f"{track}: non-finite input patches")
        n_patches.append(batch.shape[0])
        n_frames.append(audio_rep.shape[0])
        keep = min(args.patches, batch.shape[0])
        patches.append(batch[:keep].astype(np.float32))
        patch_track += [t] * keep
        patch_index += list(range(keep))
        print(f"{track}: {audio_rep.shape[0]} frames, {batch.shape[0]} patches "
              f"(dtype {batch.dtype})")
    patches = np.concatenate(patches)
    out.update(patches=patches, patch_track=np.array(patch_track),
               patch_index=np.array(patch_index), n_patches=np.array(n_patches),
               n_frames=np.array(n_frames))

    for model in MODELS:
        start = time.perf_counter()
        sess, x, is_training, tensors = official_graph(model)
        values = {name: [] for name in tensors}
        for patch in patches:  # one patch at a time, as the extractor (BATCH_SIZE = 1)
            result = sess.run(list(tensors.values()),
                              feed_dict={x: patch[None], is_training: False})
            for name, value in zip(tensors, result, strict=True):
                values[name].append(np.asarray(value, dtype=np.float32)[0])
        sess.close()
        for name, per_patch in values.items():
            shape = per_patch[0].shape
            size = int(np.prod(shape))
            if size > args.max_values:
                positions = np.sort(rng.choice(size, args.max_values, replace=False))
            else:
                positions = np.arange(size)
            out[f"{model}/{name}"] = np.stack([v.ravel()[positions] for v in per_patch])
            out[f"{model}/{name}/positions"] = positions.astype(np.int32)
            out[f"{model}/{name}/shape"] = np.array(shape, dtype=np.int32)
        print(f"{model}: {len(patches)} patches in {time.perf_counter() - start:.1f} s; "
              + ", ".join(f"{k} {tuple(v[0].shape)}" for k, v in values.items()))

    versions = {name: importlib.metadata.version(name)
                for name in ("tensorflow-cpu", "tf-keras", "numpy", "librosa", "musicnn")}
    out["versions"] = np.array([f"{k}=={v}" for k, v in versions.items()])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1e6:.2f} MB); {versions}")


if __name__ == "__main__":
    main()
