"""`VectorStore` on a Milvus server (standalone or a distributed cluster), chosen by URL.

``milvus://host:19530[/database]`` (plain gRPC), ``milvus+https://host[:port][/database]`` (TLS).
Each vector space is one collection ``pm_<space>``; the space's identity (model, dimension, metric,
pipeline parameters) is the collection's description, so a collection made by another model is
refused. Payload fields are scalar fields. Folder filters run inside Milvus: every record carries
the hashes of the folders above it (``folders``, an int64 array), and a folder filter is
``array_contains_any(folders, [...])``. Every read uses Strong consistency, so a write is seen by
the next search from any process (Milvus's default, Bounded, can hide a fresh delete).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np

from picmatch.errors import MissingDependencyError, SpaceMismatchError, StoreError
from picmatch.store.base import (
    FloatArray,
    Metric,
    Payload,
    Record,
    SearchFilter,
    SpaceInfo,
    StoreHit,
    check_same_space,
    valid_space_name,
)

PREFIX = "pm_"
ROOTS = "pm__roots"  # two underscores: never a space's collection
CONSISTENCY = "Strong"
# ?consistency= in the URL sets it for similarity searches only (bookkeeping stays Strong):
# Strong waits for the server's next time tick (~0.2 s or more), Bounded may miss a second of writes
SEARCH_CONSISTENCY = {"strong": "Strong", "bounded": "Bounded", "session": "Session"}
MAX_PATH = 16_384  # bytes of the stored (escaped) path
MAX_DEPTH = 256  # folder hashes kept per record
HNSW_M = 32
EF_SEARCH = 256  # HNSW candidate list: recall@10 ~0.95 at 1M real-like vectors (DESIGN.md)
BATCH_BYTES = 8 << 20  # per upsert call, well under gRPC's 64 MB message limit
_PAYLOAD_FIELDS = ["path", "content_hash", "size", "mtime_ns", "width", "height", "taken_at"]
_ESCAPED = "\x00"  # a path no file system allows: what follows is the hex of its bytes


class MilvusStore:
    """Vector spaces as Milvus collections; `token` is ``user:password`` or an API key."""

    def __init__(self, url: str, token: str | None = None) -> None:
        try:
            import pymilvus
        except ImportError as exc:
            raise MissingDependencyError("pymilvus", "milvus") from exc
        logging.getLogger("pymilvus").setLevel(logging.ERROR)
        self._errors: tuple[type[BaseException], ...] = (pymilvus.exceptions.MilvusException,)
        endpoint, database = parse_url(url)
        self._search_consistency = search_consistency(url)
        self.url = url
        self._where = endpoint

        def connect(db: str) -> Any:
            return self._call(
                "connect",
                lambda: pymilvus.MilvusClient(
                    uri=endpoint, token=token or "", db_name=db, timeout=10
                ),
            )

        self._client = connect("")
        if database:
            if database not in self._call("list databases", self._client.list_databases):
                self._call("create the database", lambda: self._client.create_database(database))
            self._client.close()
            self._client = connect(database)
        self._dims: dict[str, int] = {}
        self._loaded: set[str] = set()

    # spaces

    def ensure_space(self, info: SpaceInfo) -> SpaceInfo:
        if not valid_space_name(info.name):
            raise StoreError(f"invalid space name {info.name!r}: use lowercase letters, digits, _")
        existing = self.get_space(info.name)
        if existing is None:
            try:
                self._create(info)
            except StoreError:  # another process created it in between
                existing = self.get_space(info.name)
                if existing is None:
                    raise
        if existing is not None:
            check_same_space(existing, info)
            return existing
        self._dims[info.name] = info.dim
        return info

    def get_space(self, name: str) -> SpaceInfo | None:
        collection = PREFIX + name
        if not self._call("look up a collection", lambda: self._client.has_collection(collection)):
            return None
        described = self._call(
            "describe a collection", lambda: self._client.describe_collection(collection)
        )
        return _space_of(name, described)

    def list_spaces(self) -> list[SpaceInfo]:
        names = self._call("list collections", self._client.list_collections)
        found = (self.get_space(n[len(PREFIX) :]) for n in sorted(names) if _is_space(n))
        return [s for s in found if s is not None]

    def drop_space(self, name: str) -> None:
        collection = PREFIX + name
        self._call("drop a collection", lambda: self._client.drop_collection(collection))
        self._dims.pop(name, None)
        self._loaded.discard(name)

    # records

    def upsert(
        self, space: str, records: Sequence[Record], *, replacing: Iterable[int] = ()
    ) -> None:
        # No transactions: delete first, so an interruption loses (and a re-run re-embeds) the
        # records instead of leaving the replaced ones behind.
        written = {r.id for r in records}
        self.delete(space, [i for i in replacing if i not in written])
        if not records:
            return
        dim = self._dim(space)
        if dim is None:
            raise StoreError(f"no vector space named {space!r} on {self._where}")
        rows = [_row(r, dim) for r in records]
        step = max(1, BATCH_BYTES // (dim * 4 + 512))
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            self._call("write", lambda c=chunk: self._client.upsert(PREFIX + space, c))

    def delete(self, space: str, ids: Iterable[int]) -> None:
        id_list = [int(i) for i in ids]
        if not id_list or self._dim(space) is None:
            return
        for start in range(0, len(id_list), 10_000):
            chunk = id_list[start : start + 10_000]
            self._call("delete", lambda c=chunk: self._client.delete(PREFIX + space, ids=c))

    def get(self, space: str, ids: Sequence[int]) -> list[Record]:
        wanted = [int(i) for i in ids]
        if not wanted or self._dim(space) is None:
            return []
        found: dict[int, Record] = {}
        for start in range(0, len(wanted), 10_000):
            chunk = wanted[start : start + 10_000]
            rows = self._query(space, f"id in {chunk}", ["id", "vector", *_PAYLOAD_FIELDS])
            found.update((int(r["id"]), _record(r)) for r in rows)
        return [found[i] for i in wanted if i in found]

    def iter_payloads(self, space: str) -> Iterator[tuple[int, Payload]]:
        for batch in self._iterate(space, 4096, ["id", *_PAYLOAD_FIELDS]):
            yield from ((int(r["id"]), _payload(r)) for r in batch)

    def iter_records(self, space: str, batch: int = 4096) -> Iterator[list[Record]]:
        for rows in self._iterate(space, batch, ["id", "vector", *_PAYLOAD_FIELDS]):
            yield [_record(r) for r in rows]

    def ids_in_folders(self, space: str, folders: Sequence[str]) -> list[int]:
        expr = _folder_expr(folders)
        if not folders or self._dim(space) is None:
            return []
        ids: list[int] = []
        for batch in self._iterate(space, 16_384, ["id"], expr):
            ids += (int(r["id"]) for r in batch)
        return sorted(ids)

    def count(self, space: str) -> int:
        if self._dim(space) is None:
            return 0
        rows = self._query(space, "", ["count(*)"])
        return int(rows[0]["count(*)"])

    # search

    def search(
        self, space: str, vectors: FloatArray, k: int, flt: SearchFilter | None = None
    ) -> list[list[StoreHit]]:
        if k < 1:
            raise StoreError(f"k must be at least 1, got {k}")
        queries = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        dim = self._dim(space)
        if dim is None:
            return [[] for _ in queries]
        if queries.shape[1] != dim:
            raise SpaceMismatchError(
                f"query vectors have dimension {queries.shape[1]}, space {space!r} has {dim}"
            )
        self._load(space)
        rows = self._call(
            "search",
            lambda: self._client.search(
                PREFIX + space,
                data=queries.tolist(),
                limit=k,
                filter=_filter_expr(flt),
                output_fields=_PAYLOAD_FIELDS,
                search_params={"metric_type": "IP", "params": {"ef": max(EF_SEARCH, k)}},
                consistency_level=self._search_consistency,
            ),
        )
        return [
            [StoreHit(int(h["id"]), float(h["distance"]), _payload(h["entity"])) for h in row]
            for row in rows
        ]

    # roots

    def roots(self) -> list[str]:
        if not self._has_roots():
            return []
        self._load_collection(ROOTS)
        rows = self._call(
            "read the roots",
            lambda: self._client.query(
                ROOTS,
                filter="id != 0",
                output_fields=["path", "added"],
                consistency_level=CONSISTENCY,
            ),
        )
        return [_path_of(r["path"]) for r in sorted(rows, key=lambda r: (r["added"], r["path"]))]

    def add_roots(self, paths: Sequence[str]) -> None:
        known = set(self.roots())
        new = [p for p in dict.fromkeys(paths) if p not in known]
        if not new:
            return
        self._ensure_roots()
        rows = [
            {"id": _hash64(p), "path": _stored_path(p), "added": time.time_ns() + i, "v": [0, 0]}
            for i, p in enumerate(new)
        ]
        self._call("write the roots", lambda: self._client.upsert(ROOTS, rows))

    def remove_roots(self, paths: Sequence[str]) -> None:
        if not paths or not self._has_roots():
            return
        ids = [_hash64(p) for p in paths]
        self._call("remove roots", lambda: self._client.delete(ROOTS, ids=ids))

    # housekeeping

    def index_info(self, space: str) -> dict[str, object]:
        if self._dim(space) is None:
            return {}
        return {
            "kind": "hnsw (milvus)",
            "vectors": self.count(space),
            "M": HNSW_M,
            "ef_search": EF_SEARCH,
            "indexed": self._indexed_rows(space),
        }

    def wait_for_index(self, space: str, timeout: float = 3600.0) -> None:
        """Block until the server's index covers every flushed record (benchmarks use this;
        searches are right before that too, Milvus scans unindexed segments exactly)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            described = self._describe_index(space)
            if int(described.get("pending_index_rows", 0)) == 0 and int(
                described.get("indexed_rows", 0)
            ) >= int(described.get("total_rows", 0)):
                return
            time.sleep(0.5)
        raise StoreError(f"the Milvus index of {space!r} is still building after {timeout:.0f} s")

    def size_bytes(self) -> int:
        """Estimated bytes on the server: vectors plus payloads (Milvus reports no exact size)."""
        return sum(self.count(s.name) * (s.dim * 4 + 256) for s in self.list_spaces())

    def flush(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Seal what was written, so the server indexes it (in the background) and a restart
        replays nothing; the last step of every index and remove run. `progress` is unused:
        the server builds its index without the client."""
        for info in self.list_spaces():
            collection = PREFIX + info.name
            self._call("flush", lambda c=collection: self._client.flush(c))

    def close(self) -> None:
        self._client.close()

    # internals

    def _call(self, what: str, fn: Any) -> Any:
        try:
            return fn()
        except self._errors as exc:
            raise _translate(exc, what, self._where) from exc

    def _dim(self, space: str) -> int | None:
        dim = self._dims.get(space)
        if dim is None:
            info = self.get_space(space)
            if info is None:
                return None
            dim = self._dims[space] = info.dim
        return dim

    def _create(self, info: SpaceInfo) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(
            auto_id=False, enable_dynamic_field=False, description=_describe(info)
        )
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=info.dim)
        schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=256)
        for name in ("size", "mtime_ns", "width", "height"):
            schema.add_field(name, DataType.INT64)
        schema.add_field("taken_at", DataType.DOUBLE)  # NaN: unknown
        schema.add_field(
            "folders", DataType.ARRAY, element_type=DataType.INT64, max_capacity=MAX_DEPTH
        )
        index = MilvusClient.prepare_index_params()
        # HNSW on inner product of L2-normalised vectors (= cosine). Milvus scans growing segments
        # exactly and builds the graph per sealed segment itself, so it suits every size.
        index.add_index(
            field_name="vector",
            index_type="HNSW",
            metric_type="IP",
            params={"M": HNSW_M, "efConstruction": 200},
        )
        self._call(
            "create a collection",
            lambda: self._client.create_collection(
                PREFIX + info.name,
                schema=schema,
                index_params=index,
                consistency_level=CONSISTENCY,
            ),
        )
        self._loaded.add(info.name)

    def _describe_index(self, space: str) -> dict[str, Any]:
        described: dict[str, Any] = self._call(
            "describe the index",
            lambda: self._client.describe_index(PREFIX + space, index_name="vector"),
        )
        return described or {}

    def _indexed_rows(self, space: str) -> int:
        return int(self._describe_index(space).get("indexed_rows", 0))

    def _load(self, space: str) -> None:
        if space not in self._loaded:
            self._load_collection(PREFIX + space)
            self._loaded.add(space)

    def _load_collection(self, collection: str) -> None:
        self._call("load a collection", lambda: self._client.load_collection(collection))

    def _query(self, space: str, expr: str, fields: list[str]) -> list[dict[str, Any]]:
        self._load(space)
        rows: list[dict[str, Any]] = self._call(
            "query",
            lambda: self._client.query(
                PREFIX + space, filter=expr, output_fields=fields, consistency_level=CONSISTENCY
            ),
        )
        return rows

    def _iterate(
        self, space: str, batch: int, fields: list[str], expr: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """Every matching row in batches of at most `batch`, by primary key ranges."""
        if self._dim(space) is None:
            return
        last: int | None = None
        while True:
            cursor = "" if last is None else f"id > {last}"  # ids are any int64
            after = " and ".join(f"({e})" for e in (expr, cursor) if e)
            rows = self._page(space, after, fields, batch)
            if not rows:
                return
            yield rows
            last = int(rows[-1]["id"])

    def _page(self, space: str, expr: str, fields: list[str], batch: int) -> list[dict[str, Any]]:
        """The `batch` rows with the smallest ids matching `expr`, sorted by id (Milvus returns a
        limited query in primary-key order, which pymilvus's own query iterator relies on too)."""
        self._load(space)
        rows: list[dict[str, Any]] = self._call(
            "query",
            lambda: self._client.query(
                PREFIX + space,
                filter=expr,
                output_fields=fields,
                limit=batch,
                consistency_level=CONSISTENCY,
            ),
        )
        return sorted(rows, key=lambda r: int(r["id"]))

    def _has_roots(self) -> bool:
        return bool(self._call("look up the roots", lambda: self._client.has_collection(ROOTS)))

    def _ensure_roots(self) -> None:
        if self._has_roots():
            return
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, description="picmatch roots")
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("path", DataType.VARCHAR, max_length=MAX_PATH)
        schema.add_field("added", DataType.INT64)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # Milvus needs a vector field
        index = MilvusClient.prepare_index_params()
        index.add_index(field_name="v", index_type="FLAT", metric_type="L2")
        try:
            self._call(
                "create the roots collection",
                lambda: self._client.create_collection(
                    ROOTS, schema=schema, index_params=index, consistency_level=CONSISTENCY
                ),
            )
        except StoreError:
            if not self._has_roots():
                raise


def parse_url(url: str) -> tuple[str, str]:
    """(endpoint for pymilvus, database or "")."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme not in ("milvus", "milvus+http", "milvus+https") or not parsed.hostname:
        raise StoreError(
            f"bad Milvus URL {url!r}: write milvus://HOST:PORT[/DATABASE] "
            "or milvus+https://HOST[:PORT][/DATABASE]"
        )
    tls = scheme == "milvus+https"
    port = parsed.port or (443 if tls else 19530)
    host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    endpoint = f"{'https' if tls else 'http'}://{host}:{port}"
    database = parsed.path.strip("/")
    if database and not valid_space_name(database.lower()):
        raise StoreError(f"bad Milvus database name {database!r}: use letters, digits and _")
    return endpoint, database


def search_consistency(url: str) -> str:
    """The consistency level of searches: Strong unless the URL says ``?consistency=bounded``
    (or ``session``), which trades visibility of the last second of writes for speed."""
    query = parse_qs(urlparse(url).query)
    wanted = query.get("consistency", ["strong"])[-1].lower()
    if wanted not in SEARCH_CONSISTENCY:
        raise StoreError(
            f"unknown consistency {wanted!r} in {url!r}: use {', '.join(SEARCH_CONSISTENCY)}"
        )
    return SEARCH_CONSISTENCY[wanted]


def folder_hashes(path: str) -> list[int]:
    """Hashes of `path` itself and of every folder above it, shallowest first."""
    cuts = [i for i, ch in enumerate(path) if ch in "/\\" and i > 0]
    folders = [path[:i] for i in cuts if path[i - 1] not in "/\\"]
    return [_hash64(f) for f in [*folders, path.rstrip("/\\")]][-MAX_DEPTH:]


def _folder_expr(folders: Sequence[str]) -> str:
    """A Milvus filter for records inside any of `folders`; "" where one of them is the root."""
    stripped = [f.rstrip("/\\") for f in folders]
    if any(not f for f in stripped):
        return ""
    return f"array_contains_any(folders, {sorted({_hash64(f) for f in stripped})})"


def _filter_expr(flt: SearchFilter | None) -> str:
    if flt is None:
        return ""
    parts = []
    if flt.path_prefixes and (expr := _folder_expr(flt.path_prefixes)):
        parts.append(expr)
    if flt.exclude_ids:
        parts.append(f"id not in {sorted(int(i) for i in flt.exclude_ids)}")
    return " and ".join(parts)


def _hash64(path: str) -> int:
    digest = hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _stored_path(path: str) -> str:
    """A path as valid UTF-8 text, losslessly: names that are not UTF-8 are kept as hex bytes."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return _ESCAPED + path.encode("utf-8", "surrogateescape").hex()
    return path


def _path_of(stored: str) -> str:
    if stored.startswith(_ESCAPED):
        return bytes.fromhex(stored[1:]).decode("utf-8", "surrogateescape")
    return stored


def _row(record: Record, dim: int) -> dict[str, Any]:
    vector = np.asarray(record.vector, dtype=np.float32).ravel()
    if vector.shape != (dim,):
        raise SpaceMismatchError(f"vector of dimension {vector.shape[0]} in a space of dim {dim}")
    p = record.payload
    path = _stored_path(p.path)
    if len(path.encode("utf-8")) > MAX_PATH:
        raise StoreError(f"path too long for the Milvus store ({len(path)} > {MAX_PATH}): {path!r}")
    return {
        "id": int(record.id),
        "vector": vector.tolist(),
        "path": path,
        "content_hash": p.content_hash,
        "size": int(p.size),
        "mtime_ns": int(p.mtime_ns),
        "width": int(p.width),
        "height": int(p.height),
        "taken_at": math.nan if p.taken_at is None else float(p.taken_at),
        "folders": folder_hashes(p.path),
    }


def _payload(row: dict[str, Any]) -> Payload:
    taken = row["taken_at"]
    return Payload(
        _path_of(row["path"]),
        row["content_hash"],
        int(row["size"]),
        int(row["mtime_ns"]),
        int(row["width"]),
        int(row["height"]),
        None if taken is None or math.isnan(taken) else float(taken),
    )


def _record(row: dict[str, Any]) -> Record:
    return Record(int(row["id"]), np.asarray(row["vector"], dtype=np.float32), _payload(row))


def _is_space(collection: str) -> bool:
    return collection.startswith(PREFIX) and not collection.startswith(PREFIX + "_")


def _describe(info: SpaceInfo) -> str:
    return json.dumps(
        {
            "picmatch": info.schema_version,
            "dim": info.dim,
            "metric": info.metric.value,
            "model_spec": info.model_spec,
            "params": dict(info.params),
        },
        sort_keys=True,
    )


def _space_of(name: str, described: dict[str, Any]) -> SpaceInfo:
    try:
        meta = json.loads(described.get("description") or "")
        return SpaceInfo(
            name,
            int(meta["dim"]),
            Metric(meta["metric"]),
            str(meta["model_spec"]),
            dict(meta["params"]),
            int(meta["picmatch"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SpaceMismatchError(
            f"the Milvus collection {PREFIX + name!r} was not made by picmatch; "
            "choose another database in the store URL (milvus://HOST:PORT/DATABASE)"
        ) from exc


def _translate(exc: BaseException, what: str, where: str) -> StoreError:
    text = str(exc)
    chain = " ".join(str(e) for e in (exc, exc.__cause__, exc.__context__) if e).lower()
    if "unauthenticated" in chain or "auth check failure" in chain:
        return StoreError(
            f"the Milvus server at {where} refused the credentials ({what}): set the token "
            "with PICMATCH_STORE_TOKEN=user:password (or an API key)"
        )
    if "fail connecting" in chain or "unavailable" in chain or "deadline" in chain:
        return StoreError(
            f"cannot reach the Milvus server at {where} ({what}): is it running, and is the "
            "store URL right? (--store / PICMATCH_STORE)"
        )
    return StoreError(f"Milvus at {where} failed to {what}: {text}")
