"""A retrieval server with Search-R1's ``POST /retrieve`` schema (``sdar-gym serve retriever``).

Request: ``{"queries": [str, ...], "topk": int | null, "return_scores": bool}``.
Response: ``{"result": [[{"document": {"id", "contents"}, "score": float}, ...], ...]}``, one list
per query; with ``return_scores`` false each inner item is the bare document, as in Search-R1.
Every request is validated (pydantic); bad ones get 422 with the reason (never the input). Bodies
over ``max_request_bytes`` get 413; with a token, every route but ``GET /health`` needs
``Authorization: Bearer <token>`` (the env server's guards, :mod:`env_servers.guards`).
``GET /health`` describes the index. The client is
:class:`sdar_gym.envs.search_qa.retrievers.HTTPRetriever`, which the env uses when given the
server's URL.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from env_servers.guards import MAX_REQUEST_BYTES, check_port, guard, resolve_token, serve
from sdar_gym.envs.search_qa.retrievers import (
    HTTPRetriever,
    LocalIndex,
    Retriever,
    load_index,
)

MAX_QUERIES = 1024
"""Most queries in one request."""
MAX_QUERY_CHARS = 4096
"""Longest query accepted."""
MAX_TOPK = 100

__all__ = ["HTTPRetriever", "RetrieveRequest", "ServeRetrieverArgs", "create_app"]


class RetrieveRequest(BaseModel):
    """Search-R1's request body."""

    model_config = ConfigDict(extra="forbid")

    queries: list[str] = Field(min_length=1, max_length=MAX_QUERIES)
    topk: int | None = Field(default=None, ge=1, le=MAX_TOPK, strict=True)
    """A JSON integer: true, 2.5, NaN or 1e999 are refused with 422."""
    return_scores: bool = False

    @field_validator("queries")
    @classmethod
    def _queries_are_searchable(cls, queries: list[str]) -> list[str]:
        for i, q in enumerate(queries):
            if not q.strip():
                raise ValueError(f"query {i} is empty")
            if len(q) > MAX_QUERY_CHARS:
                raise ValueError(f"query {i} has {len(q)} characters; the limit is {MAX_QUERY_CHARS}")
        return queries


def create_app(retriever: Retriever, default_topk: int = 3, description: dict[str, Any] | None = None,
               token: str | None = None, max_request_bytes: int = MAX_REQUEST_BYTES) -> Any:
    """A FastAPI app serving ``retriever``. Searches are serialized: the index is not assumed thread-safe."""
    from fastapi import FastAPI

    app = FastAPI(title="sdar-gym retriever")
    lock = threading.Lock()

    @app.post("/retrieve")
    def retrieve(request: RetrieveRequest) -> dict[str, Any]:
        with lock:
            hits = retriever.search(request.queries, request.topk or default_topk)
        if request.return_scores:
            return {"result": [[{"document": h.document, "score": h.score} for h in row] for row in hits]}
        return {"result": [[h.document for h in row] for row in hits]}

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "default_topk": default_topk, **(description or {})}

    return guard(app, token=token, max_request_bytes=max_request_bytes)


def describe(index: LocalIndex) -> dict[str, Any]:
    """What ``/health`` reports about a loaded index."""
    info: dict[str, Any] = {"kind": index.kind, "n_docs": len(index.passages)}
    if index.kind == "dense":
        info["embedder"] = index.embedder.model_name
    return info


@dataclass
class ServeRetrieverArgs:
    """Serve a saved BM25 or dense index over HTTP with Search-R1's /retrieve schema."""

    index: Path = Path("data/search_qa/index-bm25")
    """Index folder written by `sdar-gym data search-qa-index`."""
    host: str = "127.0.0.1"
    """Interface to bind; the default keeps the server local to this machine."""
    port: int = 8000
    """TCP port."""
    topk: int = 3
    """Documents per query when a request leaves topk out."""
    model: str | None = None
    """Dense only: the embedder you expect the index to use (checked against its sidecar)."""
    token: str | None = None
    """Bearer token clients must send; defaults to $SDAR_GYM_TOKEN when set."""
    max_request_bytes: int = MAX_REQUEST_BYTES
    """Largest request body accepted."""

    def run(self) -> None:
        check_port(self.port)
        token = resolve_token(self.token, self.host)
        index = load_index(self.index, model=self.model)
        app = create_app(index, self.topk, describe(index), token, self.max_request_bytes)
        print(f"serving {describe(index)} from {self.index} on http://{self.host}:{self.port}/retrieve")
        serve(app, self.host, self.port, "info")
