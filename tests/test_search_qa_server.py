"""The retrieval server: Search-R1's /retrieve schema, request validation, and the env over loopback HTTP."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import play_search_qa_expert
from server_support import free_port

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from fastapi.testclient import TestClient  # noqa: E402

from env_servers.retriever import (  # noqa: E402
    MAX_QUERY_CHARS,
    MAX_TOPK,
    ServeRetrieverArgs,
    create_app,
    describe,
)
from sdar_gym.core import DataError  # noqa: E402
from sdar_gym.envs.search_qa import SearchQAEnv, load_corpus  # noqa: E402
from sdar_gym.envs.search_qa.generator import write_set  # noqa: E402
from sdar_gym.envs.search_qa.retrievers import (  # noqa: E402
    HTTPRetriever,
    RetrieverError,
    build_index,
    load_index,
)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_set(tmp_path_factory.mktemp("sqs") / "set", n_cities=20, n_train=10, n_test=30, seed=4)


@pytest.fixture(scope="module")
def index(data_dir):
    return build_index(load_corpus(data_dir / "corpus.jsonl"), "bm25")


@pytest.fixture(scope="module")
def client(index) -> TestClient:
    return TestClient(create_app(index, default_topk=3, description=describe(index)))


def test_retrieve_round_trip_with_scores(client, index):
    queries = ["In which year was a city founded?", "Who created the opera?"]
    reply = client.post("/retrieve", json={"queries": queries, "topk": 4, "return_scores": True})
    assert reply.status_code == 200
    result = reply.json()["result"]
    assert len(result) == 2 and all(len(row) == 4 for row in result)
    for row, local in zip(result, index.search(queries, 4)):
        assert [item["document"] for item in row] == [h.document for h in local]
        assert [item["score"] for item in row] == pytest.approx([h.score for h in local])
        assert set(row[0]["document"]) == {"id", "contents"}


def test_retrieve_without_scores_returns_bare_documents(client):
    reply = client.post("/retrieve", json={"queries": ["river"]})
    assert reply.status_code == 200
    (row,) = reply.json()["result"]
    assert len(row) == 3 and set(row[0]) == {"id", "contents"}  # the server's default topk


def test_health(client, index):
    assert client.get("/health").json() == {"status": "ok", "default_topk": 3, "kind": "bm25", "n_docs": len(index.passages)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"queries": []}, "at least 1 item"),
        ({"queries": ["ok", "   "]}, "query 1 is empty"),
        ({"queries": ["x" * (MAX_QUERY_CHARS + 1)]}, f"query 0 has {MAX_QUERY_CHARS + 1} characters"),
        ({"queries": ["ok"], "topk": 0}, "greater than or equal to 1"),
        ({"queries": ["ok"], "topk": MAX_TOPK + 1}, f"less than or equal to {MAX_TOPK}"),
        ({"queries": "not a list"}, "valid list"),
        ({"queries": [1, 2]}, "valid string"),
        ({"queries": ["ok"], "top_k": 3}, "Extra inputs are not permitted"),
        ({}, "Field required"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(client, body, message):
    reply = client.post("/retrieve", json=body)
    assert 400 <= reply.status_code < 500
    assert message in reply.text, reply.text


def test_malformed_json_is_rejected(client):
    reply = client.post("/retrieve", content=b"{not json", headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "json" in reply.text.lower()


@pytest.fixture(scope="module")
def server_url(index):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(index), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the retriever server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_http_retriever_matches_the_local_index(server_url, index):
    remote = HTTPRetriever(server_url)
    queries = ["founded", "moved to work as a poet", "zzzz"]
    got = remote.search(queries, 3)
    assert [[h.document for h in row] for row in got] == [[h.document for h in row] for row in index.search(queries, 3)]
    with pytest.raises(RetrieverError, match="answered 422"):
        remote.search([""], 3)


def test_env_over_a_server_url_reaches_em_1(server_url, data_dir):
    env = SearchQAEnv(data_dir=data_dir, split="test", retriever=server_url + "/retrieve")
    for task_id in env.task_ids[:9]:
        play_search_qa_expert(env, task_id)
    env.close()
    assert env.retriever._client.is_closed


def test_unreachable_server_is_a_clear_error(data_dir):
    env = SearchQAEnv(data_dir=data_dir, split="test", retriever=f"http://127.0.0.1:{free_port()}")
    env.reset(seed=0)
    with pytest.raises(RetrieverError, match="unreachable"):
        env.step("search[anything]")


def test_serve_command_defaults_to_localhost_and_checks_the_index(tmp_path, index):
    assert ServeRetrieverArgs().host == "127.0.0.1"
    index.save(tmp_path / "idx")
    assert load_index(tmp_path / "idx").kind == "bm25"
    with pytest.raises(DataError, match="not a search index"):
        ServeRetrieverArgs(index=tmp_path).run()
