"""Soak: hostile and unlucky clients against every server, and kills at random points.

1. Servers: ``sdar-gym serve env`` for webshop, search-qa and alfworld, and ``sdar-gym serve retriever``,
   each a subprocess on loopback with a token and a 64 KiB body limit. ``--clients`` concurrent
   clients send ``--requests`` requests per server, mixed valid (create, reset, step, expert, close,
   retrieve) and malformed (bad JSON, pickle bytes, wrong types, NaN/1e999 numbers, unknown env names
   and ids, wrong tokens, declared and chunked oversized bodies, unknown routes). Valid env requests
   are mostly steps (``MIXES``: on ALFWorld 87% steps, 3% resets, 3% expert calls, since a reset loads
   a game and an expert call may plan for seconds). In ``--cycles`` rounds, with each server's RSS
   and thread count read after every round.
2. ALFWorld concurrency: ``--alfworld-instances`` instances reset at once, ``--alfworld-rounds`` times,
   then one expert action and one step each.
3. Env workers: a process pool runs ``collect`` ``--worker-kills`` times; each time a random worker is
   SIGKILLed at a random turn. Every episode record must come back exactly once.
4. Trainers: a short ``sdar-gym train`` (tiny policy, search-qa, GRPO, a checkpoint each step) is
   SIGKILLed at a random moment (after one more checkpoint, plus 0 to 3 s) ``--trainer-kills`` times
   and resumed; after each kill every checkpoint
   on disk must load, and the finished run must log each step exactly once.

Checks: no 5xx, no dropped connection, no malformed request accepted, every valid request served,
no server crash, no lost or
duplicated episode or metric records, RSS growth within ``--rss-bound-mb`` from the end of the
``--warmup-rounds`` (the first half of the rounds; on ALFWorld, before them, one env is also reset on
every game twice, so that the cache of 64 compiled games turns over once) to the end of the last round,
counting the server's child processes (ALFWorld's planners), every checkpoint loads.
Why half the rounds: after the cache turned over, the ALFWorld server's RSS still grew through the first
rounds (from the end of round 1 to the end of round 5, then over rounds 6 to 10: +38 then +16 MB with
rounds of 800 requests, +41 then +23 MB and +39 then +38 MB with rounds of 1,000; no planner process
left at any round's end), while in one process making, playing and closing envs on 16 threads the live
Python blocks and objects stayed flat as RSS crept. That points to the allocator, but a plateau is not
shown in every run, so the JSON reports both halves (20 rounds of 800 requests: +57 MB over rounds 1 to 8,
+16 MB over rounds 9 to 20). The bound catches a leak like the old one (1.3 MB
per env made, reset and closed: well over 100 MB in the measured half), not one of a few KB per request.
At least 3 rounds, so that growth after the warm-up is measured over two or more. Writes benchmarks/results/soak.json (the counts, and what
failed); exits 1 when a check fails.

    PYTHONPATH=. python benchmarks/soak.py --quick     # a few minutes
    PYTHONPATH=. python benchmarks/soak.py             # 10,000 requests per server
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import tyro

from benchmarks.common import write_result

REPO = Path(__file__).resolve().parents[1]
TOKEN = "soak-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}
BODY_LIMIT = 64 * 1024


@dataclass
class Args:
    quick: bool = False
    """Small counts (a few minutes): 600 requests per server, 2 rounds, 3 worker kills, 2 trainer kills."""
    requests: int = 10_000
    """Requests per server."""
    clients: int = 16
    """Concurrent clients per server."""
    cycles: int = 10
    """Rounds the requests are split into; each server's RSS is read after each."""
    warmup_rounds: int = 5
    """Rounds that fill the servers' caches and allocators before RSS growth is measured (at least 2
    rounds must follow; see the module doc for why half)."""
    rss_bound_mb: float = 64.0
    """Most RSS growth allowed per server from the end of the warm-up rounds to the end of the last round."""
    servers: tuple[str, ...] = ("webshop", "search-qa", "retriever", "alfworld")
    """Servers to drive (the other parts always run)."""
    alfworld_instances: int = 12
    """ALFWorld instances resetting at once."""
    alfworld_rounds: int = 3
    """Times they all reset at once."""
    alfworld_dir: Path = REPO.parent / "shared" / "data" / "alfworld"
    """Real ALFWorld data (json_2.1.1/valid_seen); the ALFWorld parts are skipped without it."""
    worker_kills: int = 10
    """Collect calls, each with one env worker SIGKILLed at a random turn."""
    trainer_kills: int = 5
    """Times a short training run is SIGKILLed and resumed."""
    trainer_steps: int = 8
    """Steps of that run (each kill comes after one more checkpoint, so keep it above trainer_kills)."""
    seed: int = 0
    out: str = "soak"
    """Result name under benchmarks/results/."""

    def __post_init__(self) -> None:
        if self.quick:
            self.requests, self.cycles, self.warmup_rounds, self.alfworld_rounds = 600, 3, 1, 1
            self.worker_kills, self.trainer_kills = 3, 2
        if self.cycles < self.warmup_rounds + 2:
            raise SystemExit(f"--cycles {self.cycles}: need the {self.warmup_rounds} warm-up round(s) plus at least 2")


# ----------------------------------------------------------------------------- servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid`` and theirs (an ALFWorld server forks its planners)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = [], list(children.get(pid, []))
    while stack:
        found.append(child := stack.pop())
        stack.extend(children.get(child, []))
    return found


def _tree_rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its descendants, in MB."""
    total = 0
    for p in [pid, *_descendants(pid)]:
        try:
            total += _status(p, "VmRSS")
        except (OSError, KeyError):
            pass  # exited meanwhile
    return total / 1024


def _status(pid: int, key: str) -> int:
    """A number from /proc/PID/status (``VmRSS`` in kB, ``Threads``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Server:
    name: str
    kind: str
    """"env" or "retriever"."""
    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, name: str, kind: str, args: list[str], logs: Path) -> Server:
        port = _free_port()
        log = logs / f"{name}.log"
        command = [sys.executable, "-m", "sdar_gym.cli", "serve", kind, "--port", str(port), "--token", TOKEN,
                   "--max-request-bytes", str(BODY_LIMIT), *args]
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        server = cls(name, kind, process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.3)

    def stop(self) -> int | None:
        """Stop it; returns its exit code if it had already exited (a crash), else None."""
        crashed = self.process.poll()
        if crashed is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return crashed


# ----------------------------------------------------------------------------- requests

FUZZ_ALPHABET = string.ascii_letters + string.digits + string.punctuation + " 'sé日🙂\u200b\x00"


def fuzz_text(rng: random.Random, n: int = 30) -> str:
    return "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(0, n)))


async def _oversized_chunks(n_bytes: int):
    """A streamed (chunked) body: no Content-Length for the server to check up front."""
    for _ in range(n_bytes // 4096):
        yield b" " * 4096


def malformed_request(rng: random.Random, kind: str, env_id: str | None) -> tuple[str, str, str, dict]:
    """(label, method, path, httpx kwargs) of a request the server must refuse with a 4xx."""
    route = "/retrieve" if kind == "retriever" else f"/envs/{env_id or 'nope'}/step"
    common = {
        "bad_json": ("post", route, {"content": b"{not json", "headers": {**AUTH, **JSON}}),
        "pickle_bytes": ("post", route, {"content": b"\x80\x04\x95\x10pickle.", "headers": {**AUTH, **JSON}}),
        "non_utf8": ("post", route, {"content": b'{"a": "\xff\xfe"}', "headers": {**AUTH, **JSON}}),
        "json_array": ("post", route, {"json": [1, 2], "headers": AUTH}),
        "extra_field": ("post", route, {"json": {"zzz": 1}, "headers": AUTH}),
        "no_token": ("post", route, {"json": {}}),
        "wrong_token": ("post", route, {"json": {}, "headers": {"Authorization": "Bearer nope"}}),
        "declared_oversize": ("post", route, {"content": b"[" + b" " * (BODY_LIMIT + 10) + b"]", "headers": {**AUTH, **JSON}}),
        "chunked_oversize": ("post", route, {"content": _oversized_chunks(4 * BODY_LIMIT), "headers": {**AUTH, **JSON}}),
        "unknown_route": ("post", "/no/such/route", {"json": {}, "headers": AUTH}),
        "wrong_method": ("put", route, {"json": {}, "headers": AUTH}),
        "deep_json": ("post", route, {"content": b"[" * 5000, "headers": {**AUTH, **JSON}}),
    }
    if kind == "retriever":
        specific = {
            "empty_queries": ("post", route, {"json": {"queries": []}, "headers": AUTH}),
            "blank_query": ("post", route, {"json": {"queries": ["  "]}, "headers": AUTH}),
            "long_query": ("post", route, {"json": {"queries": ["q" * 5000]}, "headers": AUTH}),
            "query_not_text": ("post", route, {"json": {"queries": [[fuzz_text(rng)]]}, "headers": AUTH}),
            "topk_nan": ("post", route, {"content": b'{"queries": ["a"], "topk": NaN}', "headers": {**AUTH, **JSON}}),
            "topk_1e999": ("post", route, {"content": b'{"queries": ["a"], "topk": 1e999}', "headers": {**AUTH, **JSON}}),
            "topk_range": ("post", route, {"json": {"queries": ["a"], "topk": rng.choice([0, -3, 101, 10**30])}, "headers": AUTH}),
            "topk_bool": ("post", route, {"json": {"queries": ["a"], "topk": True}, "headers": AUTH}),
        }
    else:
        specific = {
            "unknown_env_name": ("post", "/envs", {"json": {"env": fuzz_text(rng) + "x"}, "headers": AUTH}),
            "unknown_env_id": ("post", "/envs/0123456789abcdef/step", {"json": {"action": "look"}, "headers": AUTH}),
            "action_not_text": ("post", route, {"json": {"action": {"x": 1}}, "headers": AUTH}),
            "seed_nan": ("post", f"/envs/{env_id or 'nope'}/reset", {"content": b'{"seed": NaN}', "headers": {**AUTH, **JSON}}),
            "seed_range": ("post", f"/envs/{env_id or 'nope'}/reset", {"json": {"seed": rng.choice([-1, 2**64])}, "headers": AUTH}),
            "unknown_task": ("post", f"/envs/{env_id or 'nope'}/reset", {"json": {"options": {"task_id": "no-such-task"}}, "headers": AUTH}),
            "nested_options": ("post", f"/envs/{env_id or 'nope'}/reset", {"json": {"options": {"a": {"b": 1}}}, "headers": AUTH}),
        }
    label = rng.choice(sorted({**common, **specific}))
    return (label, *{**common, **specific}[label])


@dataclass
class Tally:
    """What one server answered."""

    status: Counter = field(default_factory=Counter)
    malformed: Counter = field(default_factory=Counter)
    valid_4xx: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    valid_4xx_examples: list[str] = field(default_factory=list)
    requests: int = 0
    server_5xx: int = 0
    transport_errors: int = 0
    malformed_accepted: int = 0
    unnamed_4xx: int = 0

    def record(self, label: str, malformed: bool, reply: httpx.Response | None, error: str = "") -> None:
        self.requests += 1
        if reply is None:
            self.transport_errors += 1
            self._fail(f"{label}: {error}")
            return
        code = reply.status_code
        self.status[str(code)] += 1
        if malformed:
            self.malformed[label] += 1
        if code >= 500:
            self.server_5xx += 1
            self._fail(f"{label}: {code} {reply.text[:200]}")
        elif 400 <= code < 500:
            if not malformed:
                self.valid_4xx[f"{label} {code}"] += 1
                if len(self.valid_4xx_examples) < 10:
                    self.valid_4xx_examples.append(f"{label} {code}: {reply.text[:200]}")
            try:
                named = bool(reply.json().get("detail"))
            except ValueError:
                named = False
            if not named:
                self.unnamed_4xx += 1
                self._fail(f"{label}: {code} without a detail")
        elif malformed:
            self.malformed_accepted += 1
            self._fail(f"{label}: accepted with {code}")

    def _fail(self, message: str) -> None:
        if len(self.failures) < 20:
            self.failures.append(message)


async def send(client: httpx.AsyncClient, tally: Tally, label: str, malformed: bool, method: str, url: str, **kwargs) -> httpx.Response | None:
    try:
        reply = await client.request(method, url, **kwargs)
    except httpx.HTTPError as e:
        tally.record(label, malformed, None, f"{type(e).__name__}: {e}")
        return None
    tally.record(label, malformed, reply)
    return reply


@dataclass(frozen=True)
class Mix:
    """Shares of an env client's valid requests; the rest are steps. A finished episode is always reset."""

    reset: float = 0.08
    expert: float = 0.10
    metrics: float = 0.10
    close: float = 0.05


MIXES = {"alfworld": Mix(reset=0.03, expert=0.03, metrics=0.05, close=0.02)}
"""Per env server (default ``Mix()``). An agent's traffic is mostly steps. On ALFWorld (medians in one
process on valid_seen) a step takes under 1 ms, making an env 0.6 s, a reset 0.35 s and a first expert call
3.4 s, so at the default shares resets and expert calls took nearly all of the soak's time."""


class EnvClient:
    """One client of an env server: owns at most one instance; mixes valid and malformed calls."""

    def __init__(self, server: Server, tally: Tally, rng: random.Random) -> None:
        self.server, self.tally, self.rng = server, tally, rng
        self.mix = MIXES.get(server.name, Mix())
        self.env_id: str | None = None
        self.admissible: list[str] | None = None
        self.live = False

    async def one(self, client: httpx.AsyncClient) -> None:
        url, rng = self.server.url, self.rng
        if rng.random() < 0.4:
            label, method, path, kwargs = malformed_request(rng, "env", self.env_id)
            await send(client, self.tally, label, True, method, url + path, **kwargs)
            return
        if self.env_id is None:
            reply = await send(client, self.tally, "create", False, "post", f"{url}/envs", json={"env": self.server.name}, headers=AUTH)
            if reply is not None and reply.status_code == 200:
                self.env_id = reply.json()["env_id"]
            return
        base = f"{url}/envs/{self.env_id}"
        choice, mix = rng.random(), self.mix
        if not self.live or choice < mix.reset:
            reply = await send(client, self.tally, "reset", False, "post", f"{base}/reset", json={"seed": rng.randrange(10**6)}, headers=AUTH)
            if reply is not None and reply.status_code == 200:
                self.live, self.admissible = True, reply.json()["info"].get("admissible_actions")
        elif choice < 1 - mix.expert - mix.metrics - mix.close:
            action = self._action()
            reply = await send(client, self.tally, "step", False, "post", f"{base}/step", json={"action": action}, headers=AUTH)
            if reply is not None and reply.status_code == 200:
                body = reply.json()
                self.admissible = body["info"].get("admissible_actions")
                self.live = not (body["terminated"] or body["truncated"])
        elif choice < 1 - mix.metrics - mix.close:
            await send(client, self.tally, "expert_action", False, "get", f"{base}/expert_action", headers=AUTH)
        elif choice < 1 - mix.close:
            await send(client, self.tally, "metrics", False, "get", f"{url}/metrics", headers=AUTH)
        else:
            await self.close(client)

    def _action(self) -> str:
        rng = self.rng
        if self.admissible and rng.random() < 0.7:
            return rng.choice(self.admissible)
        return rng.choice(["search[men's shoes]", f"search[{fuzz_text(rng)}]", f"answer[{fuzz_text(rng)}]", fuzz_text(rng, 80),
                           "click[back to search]", "look"])

    async def close(self, client: httpx.AsyncClient) -> None:
        if self.env_id is not None:
            await send(client, self.tally, "close", False, "delete", f"{self.server.url}/envs/{self.env_id}", headers=AUTH)
            self.env_id, self.live = None, False


class RetrieverClient:
    def __init__(self, server: Server, tally: Tally, rng: random.Random) -> None:
        self.server, self.tally, self.rng = server, tally, rng

    async def one(self, client: httpx.AsyncClient) -> None:
        rng = self.rng
        if rng.random() < 0.4:
            label, method, path, kwargs = malformed_request(rng, "retriever", None)
            await send(client, self.tally, label, True, method, self.server.url + path, **kwargs)
        elif rng.random() < 0.1:
            await send(client, self.tally, "health", False, "get", f"{self.server.url}/health")
        else:
            queries = [fuzz_text(rng) + " river" for _ in range(rng.randint(1, 4))]
            body = {"queries": queries, "topk": rng.randint(1, 10), "return_scores": rng.random() < 0.5}
            await send(client, self.tally, "retrieve", False, "post", f"{self.server.url}/retrieve", json=body, headers=AUTH)

    async def close(self, client: httpx.AsyncClient) -> None:
        pass


async def turn_over_game_cache(server: Server, task_ids: list[str], tally: Tally) -> int:
    """Reset one env on every game of the split, twice: the server's cache of compiled games (64 at most)
    fills and turns over once, and with it the allocator's free lists (RSS stops growing after that:
    +55 MB on the second pass over valid_seen's 140 games in one process, +1 MB on the third)."""
    async with httpx.AsyncClient(timeout=300) as client:
        reply = await send(client, tally, "create", False, "post", f"{server.url}/envs", json={"env": server.name}, headers=AUTH)
        env_id = reply.json()["env_id"]
        for task_id in task_ids * 2:
            await send(client, tally, "reset", False, "post", f"{server.url}/envs/{env_id}/reset",
                       json={"options": {"task_id": task_id}}, headers=AUTH)
        await send(client, tally, "close", False, "delete", f"{server.url}/envs/{env_id}", headers=AUTH)
    return 2 * len(task_ids) + 2


async def drive(server: Server, args: Args, rng: random.Random, warm_games: list[str] | None = None) -> dict[str, Any]:
    """``args.requests`` requests from ``args.clients`` clients in ``args.cycles`` rounds; RSS after each.
    ``warm_games``: task ids the warm-up resets twice each before the first round (ALFWorld)."""
    tally, rss, threads, seconds = Tally(), [], [], []
    warm_resets = await turn_over_game_cache(server, warm_games, tally) if warm_games else 0  # in ``requests`` too
    per_round = max(1, args.requests // args.cycles)
    make = RetrieverClient if server.kind == "retriever" else EnvClient
    users = [make(server, tally, random.Random(rng.random())) for _ in range(args.clients)]
    http = [httpx.AsyncClient(timeout=300) for _ in users]
    start = time.perf_counter()
    try:
        for _ in range(args.cycles):
            quota = [per_round // len(users) + (i < per_round % len(users)) for i in range(len(users))]

            async def run(user, client, n):
                for _ in range(n):
                    await user.one(client)
                await user.close(client)  # each round ends with every instance closed

            await asyncio.gather(*(run(u, c, n) for u, c, n in zip(users, http, quota)))
            alive = server.process.poll() is None
            rss.append(round(_tree_rss_mb(server.process.pid), 1) if alive else None)
            threads.append(_status(server.process.pid, "Threads") if alive else None)
            seconds.append(round(time.perf_counter() - start, 1))
    finally:
        for c in http:
            await c.aclose()
    warm = args.warmup_rounds - 1
    growth = round(rss[-1] - rss[warm], 1) if None not in rss else None
    warmup_growth = round(rss[warm] - rss[0], 1) if None not in rss else None
    return {"requests": tally.requests, "seconds": round(time.perf_counter() - start, 1), "server_5xx": tally.server_5xx,
            "transport_errors": tally.transport_errors, "malformed_accepted": tally.malformed_accepted,
            "unnamed_4xx": tally.unnamed_4xx, "status": dict(tally.status), "malformed_sent": dict(tally.malformed),
            "valid_answered_4xx": dict(tally.valid_4xx), "valid_4xx_examples": tally.valid_4xx_examples, "rss_mb_per_round": rss, "rss_growth_mb": growth,
            "rss_growth_round_1_to_warmup_end_mb": warmup_growth,
            "rss_includes": "the server and its child processes",
            "rss_growth_measured_from_round": warm + 1, "threads_per_round": threads, "seconds_at_round_end": seconds,
            "warmup_requests_before_round_1": warm_resets,
            "failures": tally.failures}


async def alfworld_burst(server: Server, args: Args, rng: random.Random) -> dict[str, Any]:
    """``alfworld_instances`` instances resetting at once, ``alfworld_rounds`` times."""
    tally = Tally()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=args.alfworld_instances + 4)) as client:
        ids = []
        for _ in range(args.alfworld_instances):
            reply = await send(client, tally, "create", False, "post", f"{server.url}/envs", json={}, headers=AUTH)
            if reply is not None and reply.status_code == 200:
                ids.append(reply.json()["env_id"])
        resets_ok = 0
        start = time.perf_counter()
        for _ in range(args.alfworld_rounds):
            replies = await asyncio.gather(*(send(client, tally, "reset", False, "post", f"{server.url}/envs/{i}/reset",
                                                  json={"seed": rng.randrange(10**6)}, headers=AUTH) for i in ids))
            resets_ok += sum(r is not None and r.status_code == 200 for r in replies)
        reset_s = time.perf_counter() - start
        experts = await asyncio.gather(*(send(client, tally, "expert_action", False, "get", f"{server.url}/envs/{i}/expert_action",
                                              headers=AUTH) for i in ids))
        steps = await asyncio.gather(*(send(client, tally, "step", False, "post", f"{server.url}/envs/{i}/step",
                                            json={"action": (r.json()["action"] if r is not None and r.status_code == 200 else None) or "look"},
                                            headers=AUTH) for i, r in zip(ids, experts)))
        for i in ids:
            await send(client, tally, "close", False, "delete", f"{server.url}/envs/{i}", headers=AUTH)
    return {"instances": len(ids), "resets": args.alfworld_rounds * len(ids), "resets_ok": resets_ok,
            "reset_rounds_seconds": round(reset_s, 1),
            "experts_ok": sum(r is not None and r.status_code == 200 for r in experts),
            "steps_ok": sum(r is not None and r.status_code == 200 for r in steps),
            "server_5xx": tally.server_5xx, "transport_errors": tally.transport_errors, "status": dict(tally.status),
            "failures": tally.failures, "valid_4xx_examples": tally.valid_4xx_examples}


# ----------------------------------------------------------------------------- kills


def kill_env_workers(args: Args, data: dict[str, Path], rng: random.Random) -> dict[str, Any]:
    """``collect`` on a 2-worker process pool, one worker SIGKILLed at a random turn each time."""
    from sdar_gym.rollout import ExpertPolicy, collect, make_pool

    n_tasks, group_size, max_turns = 3, 2, 4

    class Killer(ExpertPolicy):
        def __init__(self, pool, turn: int, episode: int) -> None:
            super().__init__("search-qa")
            self.pool, self.turn, self.episode, self.killed = pool, turn, episode, 0

        async def generate(self, requests):
            for r in requests:
                if not self.killed and r.metadata["turn"] == self.turn and r.metadata["episode"] == self.episode:
                    os.kill(rng.choice(self.pool.pids), signal.SIGKILL)
                    self.killed += 1
            return await super().generate(requests)

    counts = Counter()

    async def one(cycle: int) -> None:
        pool = make_pool("process", "search-qa", 2, {"data_dir": str(data["search_qa"]), "split": "test"})
        try:
            policy = Killer(pool, rng.randrange(2), rng.randrange(n_tasks * group_size))
            tasks = [rng.randrange(40) for _ in range(n_tasks)]
            episodes = await collect(policy, pool, tasks, group_size=group_size, max_turns=max_turns, group_prefix=f"c{cycle}-")
            metrics = pool.metrics()
        finally:
            await pool.aclose()
        groups = Counter(e.group_id for e in episodes)
        counts["kills"] += policy.killed
        counts["restarts"] += int(metrics.get("worker_restarts", 0))
        counts["episodes_expected"] += n_tasks * group_size
        counts["episodes_returned"] += len(episodes)
        counts["episodes_failed"] += sum(e.failed for e in episodes)
        counts["groups_wrong_size"] += sum(n != group_size for n in groups.values()) + max(0, n_tasks - len(groups))

    for cycle in range(args.worker_kills):
        asyncio.run(one(cycle))
    counts["episodes_lost"] = counts["episodes_expected"] - counts["episodes_returned"]
    return dict(counts)


def kill_trainers(args: Args, data: dict[str, Path], work: Path, rng: random.Random) -> dict[str, Any]:
    """SIGKILL a short training run at random moments, resume it, and check checkpoints and metrics."""
    import torch
    from transformers import AutoModelForCausalLM

    from learners.run_log import read_metrics
    from learners.tiny import build_tiny

    model = work / "tiny"
    build_tiny(model, ["<think>search</think><action>search[city river]</action>", "answer[1880]"] * 20, vocab_size=300)
    run = work / "run"
    command = [sys.executable, "-m", "sdar_gym.cli", "train", "--learner", "grpo", "--env", "search-qa", "--model", str(model),
               "--steps", str(args.trainer_steps), "--group-size", "2", "--tasks-per-step", "1", "--max-turns", "2",
               "--max-new-tokens", "6", "--num-envs", "2", "--env-kwargs", "data_dir", str(data["search_qa"]), "split", "train",
               "--output", str(run), "--save-every", "1", "--no-progress", "--no-tensorboard", "--threads", "1", "--eval-every", "0"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    counts: Counter = Counter()
    loaded: list[str] = []

    def has_checkpoint() -> bool:
        return (run / "checkpoints" / "latest").exists()

    def check_checkpoints() -> None:
        for ckpt in sorted((run / "checkpoints").glob("step_*")) if (run / "checkpoints").is_dir() else []:
            counts["checkpoint_loads"] += 1
            try:
                AutoModelForCausalLM.from_pretrained(ckpt / "model")
                torch.load(ckpt / "learner.pt", weights_only=True)
                json.loads((ckpt / "state.json").read_text())
                loaded.append(ckpt.name)
            except Exception as e:  # noqa: BLE001  (any failure to load is what we count)
                counts["checkpoint_load_failures"] += 1
                print(f"checkpoint {ckpt} does not load: {type(e).__name__}: {e}")
        counts["stale_temp_dirs"] = sum(1 for p in (run / "checkpoints").iterdir() if p.is_dir() and not p.name.startswith("step_")) \
            if (run / "checkpoints").is_dir() else 0

    def saved_step() -> int:
        return int(latest.read_text().strip().removeprefix("step_")) if (latest := run / "checkpoints" / "latest").exists() else 0

    log = (work / "train.log").open("w")
    for _ in range(args.trainer_kills):
        # Kill once the run has saved one more checkpoint, after a random extra delay: mid-step or mid-save.
        target, extra = saved_step() + 1, rng.uniform(0.0, 3.0)
        process = subprocess.Popen(command + (["--resume"] if has_checkpoint() else []), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900
        while process.poll() is None and saved_step() < target and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(extra)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            counts["kills"] += 1
        else:
            counts["finished_before_kill"] += 1
            counts["nonzero_exits"] += process.returncode != 0
        check_checkpoints()
    final = subprocess.run(command + (["--resume"] if has_checkpoint() else []), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=1800)
    counts["final_exit_code"] = final.returncode
    check_checkpoints()
    steps = Counter(row["step"] for row in read_metrics(run))
    counts["metric_steps_lost"] = sum(1 for s in range(1, args.trainer_steps + 1) if steps[s] == 0)
    counts["metric_steps_duplicated"] = sum(n - 1 for n in steps.values() if n > 1)
    return {**counts, "checkpoints_loaded": sorted(set(loaded))}


# ----------------------------------------------------------------------------- main


def prepare_data(work: Path) -> dict[str, Path]:
    from sdar_gym.cli import main as cli
    from sdar_gym.envs.search_qa import load_corpus
    from sdar_gym.envs.search_qa.generator import write_set
    from sdar_gym.envs.search_qa.retrievers import build_index

    data = {"webshop": work / "webshop", "search_qa": write_set(work / "search_qa", n_cities=30, n_train=60, n_test=45, seed=1)}
    cli(["data", "webshop", "--out", str(data["webshop"]), "--products", "300", "--seed", "0"])
    data["index"] = build_index(load_corpus(data["search_qa"] / "corpus.jsonl"), "bm25").save(work / "index")
    return data


def main(args: Args) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the servers' finally blocks stop them
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="sdar-soak-"))
    os.environ.setdefault("SDAR_GYM_HOME", str(work / "home"))
    data = prepare_data(work)
    has_alfworld = (args.alfworld_dir / "json_2.1.1" / "valid_seen").is_dir()
    specs = [("webshop", "env", ["--env", "webshop", "--data-dir", str(data["webshop"]), "--split", "test"]),
             ("search-qa", "env", ["--env", "search-qa", "--data-dir", str(data["search_qa"]), "--split", "test"]),
             ("retriever", "retriever", ["--index", str(data["index"])])]
    if has_alfworld:
        specs.append(("alfworld", "env", ["--env", "alfworld", "--data-dir", str(args.alfworld_dir), "--split", "valid_seen",
                                          "--max-steps", "30"]))
    result: dict[str, Any] = {"args": {k: str(v) for k, v in asdict(args).items()}, "servers": {}}
    t0 = time.perf_counter()
    for name, kind, extra in [s for s in specs if s[0] in args.servers]:
        print(f"[soak] {name}: {args.requests} requests from {args.clients} clients", flush=True)
        server = Server.start(name, kind, extra, work)
        try:
            warm_games = None
            if name == "alfworld":
                from sdar_gym.envs.alfworld.data import find_games

                warm_games = [g.task_id for g in find_games(args.alfworld_dir, "valid_seen")]
            report = asyncio.run(drive(server, args, rng, warm_games))
            if name == "alfworld":
                print(f"[soak] alfworld: {args.alfworld_instances} instances resetting at once", flush=True)
                report["concurrent_resets"] = asyncio.run(alfworld_burst(server, args, rng))
        finally:
            crashed = server.stop()
        report["crashed"] = crashed is not None
        result["servers"][name] = report
        print(f"[soak] {name}: {json.dumps({k: report[k] for k in ('requests', 'server_5xx', 'transport_errors', 'malformed_accepted', 'rss_growth_mb')})}", flush=True)
    if not has_alfworld and "alfworld" in args.servers:
        result["servers"]["alfworld"] = {"skipped": f"no ALFWorld games at {args.alfworld_dir}"}
    print(f"[soak] env workers: {args.worker_kills} collects with a SIGKILL each", flush=True)
    result["env_worker_kills"] = kill_env_workers(args, data, rng)
    print(f"[soak] trainers: {args.trainer_kills} SIGKILLs and resumes", flush=True)
    result["trainer_kills"] = kill_trainers(args, data, work, rng)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["checks"] = checks = evaluate(result, args)
    result["passed"] = all(checks.values())
    write_result(args.out, result)
    print(json.dumps(checks, indent=1))
    return 0 if result["passed"] else 1


def evaluate(result: dict[str, Any], args: Args) -> dict[str, bool]:
    servers = [s for s in result["servers"].values() if "skipped" not in s]
    bursts = [s["concurrent_resets"] for s in servers if "concurrent_resets" in s]
    workers, trainer = result["env_worker_kills"], result["trainer_kills"]
    checks = {
        "no_5xx": all(s["server_5xx"] == 0 for s in servers + bursts),
        "no_dropped_connections": all(s["transport_errors"] == 0 for s in servers + bursts),
        "malformed_all_refused_with_a_named_4xx": all(s["malformed_accepted"] == 0 and s["unnamed_4xx"] == 0 for s in servers),
        "valid_requests_all_2xx": all(not s["valid_answered_4xx"] for s in servers),
        "no_server_crash": not any(s["crashed"] for s in servers),
        "requests_per_server_reached": all(s["requests"] - s.get("warmup_requests_before_round_1", 0) >= args.requests for s in servers),
        "rss_growth_within_bound": all(s["rss_growth_mb"] is not None and s["rss_growth_mb"] <= args.rss_bound_mb for s in servers),
        "no_lost_or_duplicated_episodes": workers["episodes_lost"] == 0 and workers["groups_wrong_size"] == 0,
        "every_worker_kill_recovered": workers["restarts"] >= workers["kills"] > 0,
        "trainer_killed": trainer.get("kills", 0) > 0,
        "every_checkpoint_loads": trainer.get("checkpoint_load_failures", 0) == 0 and trainer.get("checkpoint_loads", 0) > 0,
        "trainer_resumed_to_the_end": trainer["final_exit_code"] == 0,
        "no_lost_or_duplicated_metric_steps": trainer["metric_steps_lost"] == 0 and trainer["metric_steps_duplicated"] == 0,
    }
    if bursts:  # only where the ALFWorld server ran
        checks["alfworld_concurrent_resets_and_experts_all_ok"] = all(
            b["resets_ok"] == b["resets"] and b["experts_ok"] == b["instances"] for b in bursts)
    return checks


if __name__ == "__main__":
    sys.exit(main(tyro.cli(Args)))
