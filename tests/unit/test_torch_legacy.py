"""The restricted PyTorch checkpoint reader, on hand-made legacy and zip files (no torch)."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from picmatch.errors import ModelError
from picmatch.models.torch_legacy import LEGACY_MAGIC, LEGACY_PROTOCOL, load_state_dict


def _torch_global(module: str, name: str) -> type:
    """A stand-in whose pickled form is ``GLOBAL module name`` (torch is never imported)."""
    return type(name, (), {"__module__": module, "__qualname__": name})


FloatStorage = _torch_global("torch", "FloatStorage")
LongStorage = _torch_global("torch", "LongStorage")
rebuild_tensor_v2 = _torch_global("torch._utils", "_rebuild_tensor_v2")


class Storage:
    def __init__(self, key: str, data: np.ndarray, view: tuple[str, int, int] | None = None):
        self.key, self.data, self.view = key, data, view
        self.kind = LongStorage if data.dtype == np.int64 else FloatStorage


class Tensor:
    def __init__(self, storage: Storage, offset: int, size: tuple[int, ...], stride: Any):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild_tensor_v2, self.args)


class _Pickler(pickle._Pickler):  # type: ignore[name-defined,misc]
    """Pure-Python pickler that writes globals without importing them."""

    def __init__(self, file: io.BytesIO, *, legacy: bool) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def save_global(self, obj: Any, name: str | None = None) -> None:
        self.write(pickle.GLOBAL + f"{obj.__module__}\n{obj.__qualname__}\n".encode())
        self.memoize(obj)

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        if not isinstance(obj, Storage):
            return None
        record = ("storage", obj.kind, obj.key, "cpu", obj.data.size)
        return (*record, obj.view) if self.legacy else record


def _pickled(obj: Any, *, legacy: bool = True) -> bytes:
    out = io.BytesIO()
    _Pickler(out, legacy=legacy).dump(obj)
    return out.getvalue()


def legacy_file(path: Path, state: Any, storages: list[Storage]) -> Path:
    """Write the legacy layout: magic, protocol, sys info, state, keys, then raw storages."""
    sys_info = {"protocol_version": LEGACY_PROTOCOL, "little_endian": True, "type_sizes": {}}
    parts = [pickle.dumps(x, protocol=2) for x in (LEGACY_MAGIC, LEGACY_PROTOCOL, sys_info)]
    parts += [_pickled(state), pickle.dumps([s.key for s in storages], protocol=2)]
    for storage in storages:
        parts += [
            struct.pack("<q", storage.data.size),
            storage.data.astype(f"<{storage.data.dtype.char}").tobytes(),
        ]
    path.write_bytes(b"".join(parts))
    return path


def test_reads_contiguous_tensors_of_several_types(tmp_path: Path) -> None:
    weights = Storage("0", np.arange(6, dtype=np.float32))
    count = Storage("1", np.array([7], dtype=np.int64))
    state = collections.OrderedDict(
        w=Tensor(weights, 0, (2, 3), (3, 1)), n=Tensor(count, 0, (), ())
    )
    loaded = load_state_dict(legacy_file(tmp_path / "m.pth", state, [weights, count]))
    np.testing.assert_array_equal(loaded["w"], np.arange(6, dtype=np.float32).reshape(2, 3))
    assert loaded["n"].dtype == np.int64 and loaded["n"].shape == () and loaded["n"] == 7


def test_honours_offsets_strides_and_shared_storage(tmp_path: Path) -> None:
    values = np.arange(12, dtype=np.float32)
    shared = Storage("0", values)
    state = {
        "transposed": Tensor(shared, 0, (3, 2), (1, 3)),
        "every_other": Tensor(shared, 2, (3,), (2,)),
        "tail": Tensor(shared, 10, (2,), (1,)),
    }
    loaded = load_state_dict(legacy_file(tmp_path / "m.pth", state, [shared]))
    np.testing.assert_array_equal(loaded["transposed"], values[:6].reshape(2, 3).T)
    np.testing.assert_array_equal(loaded["every_other"], [2, 4, 6])
    np.testing.assert_array_equal(loaded["tail"], [10, 11])
    assert loaded["transposed"].flags.c_contiguous


def test_reads_legacy_storage_views(tmp_path: Path) -> None:
    root = Storage("0", np.arange(10, dtype=np.float32))
    view = Storage("0", root.data, view=("0v", 4, 3))
    state = {"v": Tensor(view, 1, (2,), (1,))}
    loaded = load_state_dict(legacy_file(tmp_path / "m.pth", state, [root]))
    np.testing.assert_array_equal(loaded["v"], [5, 6])


def test_reads_zip_format(tmp_path: Path) -> None:
    a, b = Storage("0", np.arange(4, dtype=np.float32)), Storage("1", np.array([3], np.int64))
    state = collections.OrderedDict(a=Tensor(a, 0, (2, 2), (1, 2)), b=Tensor(b, 0, (1,), (1,)))
    path = tmp_path / "m.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", _pickled(state, legacy=False))
        archive.writestr("archive/byteorder", "little")
        archive.writestr("archive/data/0", a.data.tobytes())
        archive.writestr("archive/data/1", b.data.tobytes())
    loaded = load_state_dict(path)
    np.testing.assert_array_equal(loaded["a"], [[0, 2], [1, 3]])
    np.testing.assert_array_equal(loaded["b"], [3])


class _RunsShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_refuses_a_pickle_that_references_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    weights = Storage("0", np.zeros(2, np.float32))
    state = {"w": Tensor(weights, 0, (2,), (1,)), "evil": _RunsShellCommand(marker)}
    path = legacy_file(tmp_path / "m.pth", state, [weights])
    with pytest.raises(ModelError, match="system"):
        load_state_dict(path)
    assert not marker.exists()


def test_refuses_a_plain_malicious_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "m.pth"
    path.write_bytes(pickle.dumps(_RunsShellCommand(marker), protocol=2))
    with pytest.raises(ModelError):
        load_state_dict(path)
    assert not marker.exists()


def test_refuses_tensors_outside_their_storage(tmp_path: Path) -> None:
    small = Storage("0", np.zeros(4, np.float32))
    state = {"w": Tensor(small, 2, (3,), (1,))}
    with pytest.raises(ModelError, match="past the end"):
        load_state_dict(legacy_file(tmp_path / "m.pth", state, [small]))


def test_refuses_truncated_and_non_tensor_files(tmp_path: Path) -> None:
    weights = Storage("0", np.zeros(4, np.float32))
    path = legacy_file(tmp_path / "m.pth", {"w": Tensor(weights, 0, (4,), (1,))}, [weights])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ModelError, match="truncated"):
        load_state_dict(path)
    with pytest.raises(ModelError, match="not a tensor"):
        load_state_dict(legacy_file(tmp_path / "n.pth", {"w": 1.5}, []))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ModelError):
        load_state_dict(tmp_path / "junk.pth")


def test_reads_the_shipped_efficientnet_checkpoint() -> None:
    from picmatch.models.efficientnet import default_checkpoint

    weights = load_state_dict(default_checkpoint())
    assert len(weights) == 296
    assert sum(w.size for w in weights.values()) == 4_694_073
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert all(w.flags.c_contiguous for w in weights.values())
