"""DNS rebinding: the server answers only to the host names it was bound under, plus chosen ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from picmatch.config import load_settings
from picmatch.server.host_check import allowed_host_names, host_name
from tests.api.conftest import IndexedLibrary

pytestmark = pytest.mark.model

REBOUND = ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", "[::2]")


@pytest.mark.parametrize("host", REBOUND)
@pytest.mark.parametrize("url", ["/api/library", "/api/health", "/", "/api/images/1/file"])
def test_a_foreign_host_header_is_refused(client: TestClient, host: str, url: str) -> None:
    response = client.get(url, headers={"Host": host})
    assert response.status_code == 400
    assert "--allowed-host" in response.json()["error"]


def test_a_foreign_host_cannot_search(client: TestClient, indexed: IndexedLibrary) -> None:
    body = {"path": indexed.path("coffee")}
    response = client.post("/api/search", json=body, headers={"Host": "attacker.example"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST", "[::1]:8000", "[::1]"]
)
def test_the_loopback_names_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/library", headers={"Host": host}).status_code == 200


def test_more_names_can_be_allowed(
    make_client: Callable[..., TestClient], indexed: IndexedLibrary
) -> None:
    named = make_client(indexed, allowed_hosts=("photos.lan",))
    assert named.get("/api/library", headers={"Host": "photos.lan:8000"}).status_code == 200
    assert named.get("/api/library", headers={"Host": "other.lan"}).status_code == 400
    anything = make_client(indexed, allowed_hosts=("*",))
    assert anything.get("/api/library", headers={"Host": "other.lan"}).status_code == 200


def test_the_bound_host_is_served(
    make_client: Callable[..., TestClient], indexed: IndexedLibrary
) -> None:
    bound = make_client(indexed, host="192.168.7.7")
    assert bound.get("/api/library", headers={"Host": "192.168.7.7:8000"}).status_code == 200
    assert bound.get("/api/library", headers={"Host": "192.168.7.8"}).status_code == 400
    everywhere = make_client(indexed, host="0.0.0.0")
    assert everywhere.get("/api/library", headers={"Host": "10.1.2.3:8000"}).status_code == 200
    assert everywhere.get("/api/library", headers={"Host": "evil.example"}).status_code == 400


def test_host_header_parsing() -> None:
    assert host_name("Example.COM:8000") == "example.com"
    assert host_name("[::1]:80") == "::1"
    assert host_name("[::1]") == "::1"
    for malformed in ("", "a:b", "[::1", "[::1]x", ":80"):
        assert host_name(malformed) is None


def test_allowed_hosts_come_from_the_environment() -> None:
    settings = load_settings(environ={"PICMATCH_ALLOWED_HOSTS": "Photos.lan, [::2]"})
    assert settings.allowed_hosts == ("photos.lan", "[::2]")
    allowed = allowed_host_names("127.0.0.1", settings.allowed_hosts)
    assert allowed is not None and {"photos.lan", "::2", "localhost"} <= allowed
