"""Read PyTorch state-dict checkpoints into numpy arrays, without PyTorch.

Both the legacy format (a sequence of pickles followed by raw storage data) and the zip
format (``data.pkl`` plus one ``data/<key>`` entry per storage) are supported. Unpickling is
restricted: only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and plain
storage type names resolve; any other global (``os.system``, ...) raises `ModelError`.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from picmatch.errors import ModelError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "b1",
}

StateDict = dict[str, npt.NDArray[Any]]


class _StorageType(NamedTuple):
    name: str
    dtype: str  # numpy type code without byte order


class _StorageRef(NamedTuple):
    key: str
    dtype: str
    offset: int  # element offset into the root storage (legacy views), else 0
    numel: int


class _TensorRef(NamedTuple):
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ModelError("malformed size or offset in checkpoint")
    return value


def _counts(value: object) -> tuple[int, ...]:
    if not isinstance(value, tuple):
        raise ModelError("malformed tensor shape in checkpoint")
    return tuple(_count(v) for v in value)


def _rebuild_tensor(
    storage: object, offset: object, size: object, stride: object, *_: object
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records where the tensor lives."""
    if not isinstance(storage, _StorageRef):
        raise ModelError("malformed tensor record in checkpoint")
    shape, strides = _counts(size), _counts(stride)
    if len(shape) != len(strides):
        raise ModelError("malformed tensor strides in checkpoint")
    return _TensorRef(storage, _count(offset), shape, strides)


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the handful of names a state dict needs; records the storages it sees."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(stream)
        self.storage_dtypes: dict[str, str] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise ModelError(
            f"refusing to load checkpoint: it references {module}.{name}, which a plain "
            "state dict never needs (the file may be malicious or not a state dict)"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            raise ModelError("unsupported persistent record in checkpoint")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str):
            raise ModelError("malformed storage record in checkpoint")
        self.storage_dtypes[key] = storage_type.dtype
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return _StorageRef(key, storage_type.dtype, 0, _count(numel))
        if not isinstance(view, tuple) or len(view) != 3:
            raise ModelError("malformed storage view in checkpoint")
        return _StorageRef(key, storage_type.dtype, _count(view[1]), _count(view[2]))


def _unpickle(stream: IO[bytes]) -> tuple[Any, dict[str, str]]:
    """Load one pickle from `stream`; returns the object and the storages it references."""
    unpickler = _RestrictedUnpickler(stream)
    try:
        return unpickler.load(), unpickler.storage_dtypes
    except ModelError:
        raise
    except Exception as exc:  # any malformed pickle: EOF, bad opcode, bad BUILD, ...
        raise ModelError(f"cannot read checkpoint: {type(exc).__name__}: {exc}") from exc


def load_state_dict(path: Path) -> StateDict:
    """Read a PyTorch state dict (legacy or zip format) as ``{name: array}``."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return _load_zip(archive)
        return _load_legacy(path.read_bytes())
    except OSError as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from exc
    except zipfile.BadZipFile as exc:
        raise ModelError(f"cannot read checkpoint {path}: {exc}") from exc


def _load_legacy(data: bytes) -> StateDict:
    stream = io.BytesIO(data)
    if _unpickle(stream)[0] != LEGACY_MAGIC:
        raise ModelError("not a PyTorch checkpoint (bad magic number)")
    if _unpickle(stream)[0] != LEGACY_PROTOCOL:
        raise ModelError("unsupported PyTorch checkpoint protocol version")
    sys_info = _unpickle(stream)[0]
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    byteorder = "<" if little else ">"
    state, dtypes = _unpickle(stream)
    keys = _unpickle(stream)[0]
    if not isinstance(keys, list) or set(keys) != set(dtypes):
        raise ModelError("malformed storage key list in checkpoint")
    buffers = _read_legacy_storages(data, stream.tell(), keys, dtypes, byteorder)
    return _materialize(state, buffers)


def _read_legacy_storages(
    data: bytes, pos: int, keys: list[str], dtypes: dict[str, str], byteorder: str
) -> dict[str, npt.NDArray[Any]]:
    """Each storage is an int64 element count then its raw bytes, in key-list order."""
    buffers: dict[str, npt.NDArray[Any]] = {}
    for key in keys:
        if pos + 8 > len(data):
            raise ModelError("checkpoint is truncated (storage header missing)")
        numel = int(np.frombuffer(data, f"{byteorder}i8", 1, pos)[0])
        dtype = np.dtype(byteorder + dtypes[key])
        if numel < 0 or pos + 8 + numel * dtype.itemsize > len(data):
            raise ModelError("checkpoint is truncated (storage data missing)")
        buffers[key] = np.frombuffer(data, dtype, numel, pos + 8)
        pos += 8 + numel * dtype.itemsize
    return buffers


def _load_zip(archive: zipfile.ZipFile) -> StateDict:
    names = archive.namelist()
    pickles = [name for name in names if name.endswith("/data.pkl") or name == "data.pkl"]
    if len(pickles) != 1:
        raise ModelError("not a PyTorch zip checkpoint (no single data.pkl)")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "<"
    if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder") == b"big":
        byteorder = ">"
    state, dtypes = _unpickle(io.BytesIO(archive.read(pickles[0])))
    buffers = {}
    for key, code in dtypes.items():
        entry = f"{prefix}data/{key}"
        if entry not in names:
            raise ModelError(f"checkpoint is missing storage {key}")
        buffers[key] = np.frombuffer(archive.read(entry), byteorder + code)
    return _materialize(state, buffers)


def _materialize(state: object, buffers: dict[str, npt.NDArray[Any]]) -> StateDict:
    if not isinstance(state, dict):
        raise ModelError("checkpoint does not hold a state dict")
    arrays: StateDict = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise ModelError(f"checkpoint entry {name!r} is not a tensor")
        arrays[name] = _tensor(value, buffers[value.storage.key])
    return arrays


def _tensor(ref: _TensorRef, root: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Copy one tensor out of its storage, honouring view offsets, offset and strides."""
    storage = ref.storage
    if storage.offset + storage.numel > root.size:
        raise ModelError(f"storage {storage.key} is smaller than the checkpoint says")
    flat = root[storage.offset : storage.offset + storage.numel]
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=flat.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= flat.size:
        raise ModelError(f"tensor reaches past the end of storage {storage.key}")
    view = np.lib.stride_tricks.as_strided(
        flat[ref.offset :],
        shape=ref.size,
        strides=tuple(s * flat.itemsize for s in ref.stride),
        writeable=False,
    )
    return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")
