"""What a user sees when the Milvus server is away, refuses the credentials, or holds a collection
made by something else: one clear StoreError each, never a gRPC traceback."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from picmatch.errors import SpaceMismatchError, StoreError
from picmatch.store.base import Metric, Payload, Record, SpaceInfo
from picmatch.store.milvus import parse_url
from picmatch.store.registry import open_store
from tests.milvus_server import TOKEN

pytestmark = pytest.mark.milvus

SPACE = SpaceInfo("photos", 8, Metric.COSINE, "model-a", {"resize": "squash"})


def test_an_unreachable_server_says_so() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StoreError, match=r"cannot reach the Milvus server at http://127\.0\.0\.1"):
        open_store(f"milvus://127.0.0.1:{port}", token=TOKEN).list_spaces()


def test_wrong_credentials_say_so(milvus_url: str) -> None:
    with pytest.raises(StoreError, match=r"refused the credentials.*PICMATCH_STORE_TOKEN"):
        open_store(milvus_url, token="root:wrong-password").list_spaces()


def test_a_space_of_another_model_or_dimension_is_refused(milvus_url: str) -> None:
    store = open_store(milvus_url, token=TOKEN)
    store.ensure_space(SPACE)
    with pytest.raises(SpaceMismatchError, match="model-a"):
        store.ensure_space(SpaceInfo("photos", 8, Metric.COSINE, "model-b"))
    with pytest.raises(SpaceMismatchError, match="dim 8"):
        open_store(milvus_url, token=TOKEN).ensure_space(
            SpaceInfo("photos", 16, Metric.COSINE, "model-a", {"resize": "squash"})
        )
    store.close()


def test_a_collection_not_made_by_picmatch_is_refused(milvus_url: str) -> None:
    endpoint, database = parse_url(milvus_url)
    open_store(milvus_url, token=TOKEN).close()  # creates the database
    client = MilvusClient(uri=endpoint, token=TOKEN, db_name=database)
    schema = MilvusClient.create_schema(auto_id=False, description="someone else's")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
    client.create_collection("pm_photos", schema=schema)
    client.close()
    with pytest.raises(SpaceMismatchError, match="not made by picmatch"):
        open_store(milvus_url, token=TOKEN).ensure_space(SPACE)


def test_searches_may_trade_freshness_for_speed(milvus_url: str) -> None:
    store = open_store(milvus_url + "?consistency=bounded", token=TOKEN)
    store.ensure_space(SPACE)
    vector = np.ones((1, 8), np.float32) / np.sqrt(8)
    store.upsert(SPACE.name, [Record(1, vector[0], Payload("/p/a.jpg", "h", 1, 1, 1, 1))])
    assert store.count(SPACE.name) == 1  # bookkeeping stays Strong
    assert len(store.search(SPACE.name, vector, k=1)) == 1
    with pytest.raises(StoreError, match="unknown consistency"):
        open_store(milvus_url + "?consistency=whenever", token=TOKEN)


def test_bad_urls_are_refused() -> None:
    with pytest.raises(StoreError, match="milvus://HOST:PORT"):
        open_store("milvus://")
    with pytest.raises(StoreError, match="database name"):
        open_store("milvus://127.0.0.1:19530/no-dashes")
