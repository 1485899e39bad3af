"""A small reader of TensorFlow's V2 checkpoints ("tensor bundles"), without TensorFlow.

A V2 checkpoint with prefix ``P`` is two files:

* ``P.index``: a leveldb-style sorted string table (SSTable). Its keys are
  the tensor names; the value of the empty key ``""`` is a
  ``BundleHeaderProto`` and every other value a ``BundleEntryProto``
  (dtype, shape, shard id, offset, size, masked CRC-32C of the bytes);
* ``P.data-00000-of-00001`` (one file per shard): the raw little-endian
  tensor bytes the entries point into.

Only what the musicnn checkpoints need is supported: uncompressed table
blocks, numeric dtypes, unsliced tensors. The few protobuf fields are decoded
by hand, so there is no dependency on ``protobuf`` either. Every tensor read
is checked against its CRC-32C.

References: TensorFlow's ``core/util/tensor_bundle/tensor_bundle.{h,cc}``,
``tensor_bundle.proto``, ``core/lib/io/format.cc`` / ``block.cc`` (the
table format is leveldb's).
"""

import os
import struct

import numpy as np

__all__ = ["CheckpointFormatError", "is_adam_slot", "read_checkpoint", "crc32c"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two block handles padded to 40 bytes + 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # compression type (1 byte) + masked crc32c (4 bytes)
_MASK_DELTA = 0xA282EAD8

# TensorFlow DataType enum -> numpy dtype (little-endian), numeric types only.
_DTYPES = {
    1: np.dtype("<f4"),   # DT_FLOAT
    2: np.dtype("<f8"),   # DT_DOUBLE
    3: np.dtype("<i4"),   # DT_INT32
    4: np.dtype("u1"),    # DT_UINT8
    5: np.dtype("<i2"),   # DT_INT16
    6: np.dtype("i1"),    # DT_INT8
    9: np.dtype("<i8"),   # DT_INT64
    10: np.dtype("?"),    # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class CheckpointFormatError(ValueError):
    """A file is not a (supported) TensorFlow V2 checkpoint."""


# ---------------------------------------------------------------- CRC-32C

def _crc_tables():
    poly = 0x82F63B78  # Castagnoli, reflected
    t0 = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        t0.append(c)
    tables = [t0]
    for _ in range(7):  # slicing-by-8
        prev = tables[-1]
        tables.append([(prev[i] >> 8) ^ t0[prev[i] & 0xFF] for i in range(256)])
    return tables


_CRC_TABLES = None


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli) of ``data``, continuing from ``crc``.

    Pure Python (slicing-by-8); about 1 s for 10 MB.
    """
    global _CRC_TABLES
    if _CRC_TABLES is None:
        _CRC_TABLES = _crc_tables()
    t0, t1, t2, t3, t4, t5, t6, t7 = _CRC_TABLES
    data = memoryview(data).cast("B")
    n = len(data)
    crc ^= 0xFFFFFFFF
    n8 = n - n % 8
    if n8:
        words = struct.unpack_from(f"<{n8 // 4}I", data, 0)
        for k in range(0, len(words), 2):
            a = words[k] ^ crc
            b = words[k + 1]
            crc = (t7[a & 0xFF] ^ t6[(a >> 8) & 0xFF] ^ t5[(a >> 16) & 0xFF] ^ t4[a >> 24]
                   ^ t3[b & 0xFF] ^ t2[(b >> 8) & 0xFF] ^ t1[(b >> 16) & 0xFF] ^ t0[b >> 24])
    for i in range(n8, n):
        crc = t0[(crc ^ data[i]) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _unmask(masked):
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# ---------------------------------------------------------------- protobuf / varints

def _varint(buf, pos):
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointFormatError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointFormatError("varint too long")


def _fields(buf):
    """Yield ``(field_number, wire_type, value)`` of a serialized protobuf message."""
    pos, n = 0, len(buf)
    while pos < n:
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise CheckpointFormatError(f"unsupported protobuf wire type {wire}")
        if pos > n:
            raise CheckpointFormatError("truncated protobuf message")
        yield number, wire, value


def _shape(buf):
    """Decode a TensorShapeProto: ``dim`` (2, repeated Dim{size=1}), ``unknown_rank`` (3)."""
    dims = []
    for number, _, value in _fields(buf):
        if number == 2:
            size = 0
            for n2, _, v2 in _fields(value):
                if n2 == 1:
                    size = v2 - (1 << 64) if v2 >= 1 << 63 else v2
            dims.append(size)
        elif number == 3 and value:
            raise CheckpointFormatError("tensor of unknown rank")
    return tuple(dims)


def _entry(buf):
    """Decode a BundleEntryProto into a dict."""
    entry = {"dtype": 0, "shape": (), "shard_id": 0, "offset": 0, "size": 0,
             "crc32c": None, "sliced": False}
    for number, _, value in _fields(buf):
        if number == 1:
            entry["dtype"] = value
        elif number == 2:
            entry["shape"] = _shape(value)
        elif number == 3:
            entry["shard_id"] = value
        elif number == 4:
            entry["offset"] = value
        elif number == 5:
            entry["size"] = value
        elif number == 6:
            entry["crc32c"] = value
        elif number == 7:
            entry["sliced"] = True
    return entry


def _header(buf):
    """Decode a BundleHeaderProto: num_shards (1), endianness (2: 0 little, 1 big)."""
    header = {"num_shards": 1, "endianness": 0}
    for number, _, value in _fields(buf):
        if number == 1:
            header["num_shards"] = value
        elif number == 2:
            header["endianness"] = value
    return header


# ---------------------------------------------------------------- SSTable

def _block(data, offset, size, path):
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointFormatError(f"{path}: block handle points past the end of the file")
    if data[end] != 0:
        raise CheckpointFormatError(
            f"{path}: compressed table block (type {data[end]}); only uncompressed is supported")
    stored = struct.unpack_from("<I", data, end + 1)[0]
    actual = crc32c(data[offset:end + 1])  # the crc covers the contents and the type byte
    if _unmask(stored) != actual:
        raise CheckpointFormatError(f"{path}: table block checksum mismatch")
    return data[offset:end]


def _block_entries(block, path):
    """Yield ``(key, value)`` of a table block (prefix-compressed keys, restarts at the end)."""
    if len(block) < 4:
        raise CheckpointFormatError(f"{path}: table block too short")
    n_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n_restarts
    if limit < 0:
        raise CheckpointFormatError(f"{path}: bad restart count in a table block")
    pos, key = 0, b""
    while pos < limit:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        if shared > len(key) or pos + unshared + value_len > limit:
            raise CheckpointFormatError(f"{path}: corrupt table block entry")
        key = key[:shared] + bytes(block[pos:pos + unshared])
        pos += unshared
        yield key, bytes(block[pos:pos + value_len])
        pos += value_len


def _read_table(path):
    """All ``(key, value)`` pairs of an uncompressed leveldb-style table file, in order."""
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < _FOOTER_SIZE:
        raise CheckpointFormatError(f"{path}: too short to be a checkpoint index")
    footer = data[-_FOOTER_SIZE:]
    magic = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)[0]
    if magic != _TABLE_MAGIC:
        raise CheckpointFormatError(
            f"{path}: not a TensorFlow V2 checkpoint index (bad table magic number)")
    _, pos = _varint(footer, 0)  # metaindex handle: offset, size (unused)
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    index = _block(data, index_offset, index_size, path)
    for _, handle in _block_entries(index, path):
        offset, p = _varint(handle, 0)
        size, _ = _varint(handle, p)
        yield from _block_entries(_block(data, offset, size, path), path)


# ---------------------------------------------------------------- public API

def is_adam_slot(name):
    """Whether ``name`` is an Adam optimizer slot (``.../Adam``, ``.../Adam_1``, ``beta1_power``)."""
    last = name.rsplit("/", 1)[-1]
    return last in ("Adam", "Adam_1") or name in ("beta1_power", "beta2_power")


def read_checkpoint(prefix, *, skip=is_adam_slot, verify=True):
    """Read the tensors of a TensorFlow V2 checkpoint into numpy arrays.

    Parameters
    ----------
    prefix : str or path-like
        The checkpoint prefix: ``<prefix>.index`` and
        ``<prefix>.data-<shard>-of-<n>`` must exist. (The musicnn checkpoints
        have the prefix ``<folder>/``: files ``.index``, ``.data-00000-of-00001``.)
    skip : callable or None, default=is_adam_slot
        Names for which ``skip(name)`` is true are not read (by default
        Adam's slot variables and beta powers, not needed for inference).
    verify : bool, default=True
        Check every tensor's bytes against the CRC-32C in its entry.

    Returns
    -------
    tensors : dict of str to ndarray
        Name -> array with the stored dtype (native byte order) and shape.

    Raises
    ------
    FileNotFoundError
        The index or a data file is missing.
    CheckpointFormatError
        The files are not a supported V2 checkpoint, or a checksum fails.
    """
    prefix = os.fspath(prefix)
    index_path = prefix + ".index"
    if not os.path.isfile(index_path):
        raise FileNotFoundError(f"checkpoint index not found: {index_path}")
    entries = list(_read_table(index_path))
    if not entries or entries[0][0] != b"":
        raise CheckpointFormatError(f"{index_path}: no bundle header (empty key) in the index")
    header = _header(entries[0][1])
    if header["endianness"] != 0:
        raise CheckpointFormatError(f"{index_path}: big-endian checkpoints are not supported")
    n_shards = header["num_shards"]
    shards = {}
    tensors = {}
    for key, value in entries[1:]:
        name = key.decode("utf-8")
        if skip is not None and skip(name):
            continue
        entry = _entry(value)
        if entry["sliced"]:
            raise CheckpointFormatError(f"{index_path}: tensor {name!r} is stored in slices")
        dtype = _DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CheckpointFormatError(
                f"{index_path}: tensor {name!r} has unsupported TensorFlow dtype "
                f"{entry['dtype']}")
        shard = entry["shard_id"]
        if shard not in shards:
            data_path = f"{prefix}.data-{shard:05d}-of-{n_shards:05d}"
            if not os.path.isfile(data_path):
                raise FileNotFoundError(f"checkpoint data file not found: {data_path}")
            with open(data_path, "rb") as fh:
                shards[shard] = fh.read()
        data = shards[shard]
        start, size = entry["offset"], entry["size"]
        count = int(np.prod(entry["shape"], dtype=np.int64))
        if size != count * dtype.itemsize or start + size > len(data):
            raise CheckpointFormatError(
                f"{index_path}: tensor {name!r} of shape {entry['shape']} has an "
                f"inconsistent size or offset")
        raw = data[start:start + size]
        if verify and entry["crc32c"] is not None and crc32c(raw) != _unmask(entry["crc32c"]):
            raise CheckpointFormatError(f"{index_path}: checksum mismatch for tensor {name!r}")
        array = np.frombuffer(raw, dtype=dtype).reshape(entry["shape"])
        tensors[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return tensors
