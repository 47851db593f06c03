"""``sdar-gym serve env``: host many instances of one registered env over HTTP, JSON only.

Routes (all JSON; every body is validated by pydantic; no pickle, no eval):
  GET  /health                      liveness, open without token
  GET  /metrics                     counters and timings
  POST /envs                        create an env instance -> {"env_id", "env", "env_kwargs"}
  POST /envs/{env_id}/reset         {"seed", "options"} -> {"observation", "info"}
  POST /envs/{env_id}/step          {"action"} -> {"observation", "reward", "terminated", "truncated", "info"}
  GET  /envs/{env_id}/expert_action -> {"action"}
  DELETE /envs/{env_id}             close the instance

The env and its constructor arguments are fixed when the server starts; clients cannot choose
them. With a token, every route but /health needs ``Authorization: Bearer <token>``. Bodies over
``max_request_bytes`` are refused with 413. It binds 127.0.0.1 unless told otherwise.

Instances are stepped in the server's thread pool, one call at a time per instance. Pure-Python
envs share one core per server process, so for CPU parallelism run one server per core and give
the http pool all their urls.
"""
# No ``from __future__ import annotations``: FastAPI reads the route signatures at run time.
# FastAPI itself is imported inside ``create_app`` so that the CLI does not import it.
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from env_servers.guards import MAX_REQUEST_BYTES, check_port, guard, resolve_token, serve
from sdar_gym.core import SdarGymError

JSONScalar = str | int | float | bool | None


class CreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str | None = None
    """If given, must name the env this server hosts (a guard against talking to the wrong server)."""


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    options: dict[str, JSONScalar] | None = None


class StepRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: str = Field(max_length=100_000)


class ResetResponse(BaseModel):
    observation: str
    info: dict[str, Any]


class StepResponse(BaseModel):
    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass
class EnvHost:
    """The server's state: env instances by id, each with a lock, and counters."""

    env: str
    env_kwargs: dict[str, Any]
    max_envs: int
    envs: dict[str, tuple[Any, threading.Lock]] = field(default_factory=dict)
    counters: Counter = field(default_factory=Counter)
    step_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def create(self) -> str:
        from sdar_gym.registration import make_env

        with self.lock:
            if len(self.envs) >= self.max_envs:
                raise OverflowError(f"this server hosts at most {self.max_envs} envs; close some first")
            env_id = uuid.uuid4().hex
            self.envs[env_id] = (None, threading.Lock())  # reserve the slot before the slow build
        try:
            env = make_env(self.env, **self.env_kwargs).unwrapped
        except BaseException:
            with self.lock:
                del self.envs[env_id]
            raise
        with self.lock:
            self.envs[env_id] = (env, self.envs[env_id][1])
        self.counters["created"] += 1
        return env_id

    def get(self, env_id: str) -> tuple[Any, threading.Lock]:
        entry = self.envs.get(env_id)
        if entry is None or entry[0] is None:
            raise KeyError(env_id)
        return entry

    def close(self, env_id: str) -> None:
        env, lock = self.get(env_id)
        with lock:
            env.close()
        with self.lock:
            self.envs.pop(env_id, None)
        self.counters["closed"] += 1


def create_app(env: str, env_kwargs: dict[str, Any] | None = None, token: str | None = None, max_envs: int = 64, max_request_bytes: int = MAX_REQUEST_BYTES) -> Any:
    """The FastAPI app hosting ``env`` (a registered short name or gymnasium id)."""
    from fastapi import FastAPI, HTTPException

    from sdar_gym.registration import env_entry

    host = EnvHost(env_entry(env).name, dict(env_kwargs or {}), max_envs)
    app = FastAPI(title=f"sdar-gym env server ({host.env})")
    app.state.host = host

    def instance(env_id: str) -> tuple[Any, threading.Lock]:
        try:
            return host.get(env_id)
        except KeyError:
            raise HTTPException(404, f"no env {env_id!r} on this server") from None

    def guarded(call: Any) -> Any:
        """Run an env call, turning its errors into HTTP errors that name the problem."""
        try:
            return call()
        except OverflowError as e:
            raise HTTPException(429, str(e)) from None
        except (SdarGymError, TypeError, ValueError) as e:
            host.counters["client_errors"] += 1
            raise HTTPException(400, f"{type(e).__name__}: {e}") from None
        except RuntimeError as e:
            host.counters["client_errors"] += 1
            raise HTTPException(409, f"{type(e).__name__}: {e}") from None
        except Exception as e:
            host.counters["server_errors"] += 1
            raise HTTPException(500, f"{type(e).__name__}: {e}") from None

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "env": host.env, "num_envs": len(host.envs)}

    @app.get("/metrics")
    def metrics() -> dict[str, Any]:
        return {"env": host.env, "num_envs": len(host.envs), "step_seconds_total": host.step_seconds, **host.counters}

    @app.post("/envs")
    def create(body: CreateRequest) -> dict[str, Any]:
        if body.env is not None and guarded(lambda: env_entry(body.env)).name != host.env:
            raise HTTPException(400, f"this server hosts {host.env!r}, not {body.env!r}")
        env_id = guarded(host.create)
        return {"env_id": env_id, "env": host.env, "env_kwargs": host.env_kwargs}

    @app.post("/envs/{env_id}/reset")
    def reset(env_id: str, body: ResetRequest) -> ResetResponse:
        target, lock = instance(env_id)
        with lock:
            obs, info = guarded(lambda: target.reset(seed=body.seed, options=body.options))
        host.counters["resets"] += 1
        return ResetResponse(observation=obs, info=info)

    @app.post("/envs/{env_id}/step")
    def step(env_id: str, body: StepRequest) -> StepResponse:
        target, lock = instance(env_id)
        start = time.perf_counter()
        with lock:
            obs, reward, terminated, truncated, info = guarded(lambda: target.step(body.action))
        host.step_seconds += time.perf_counter() - start
        host.counters["steps"] += 1
        return StepResponse(observation=obs, reward=reward, terminated=terminated, truncated=truncated, info=info)

    @app.get("/envs/{env_id}/expert_action")
    def expert_action(env_id: str) -> dict[str, str | None]:
        target, lock = instance(env_id)
        with lock:
            return {"action": guarded(target.expert_action)}

    @app.delete("/envs/{env_id}")
    def close(env_id: str) -> dict[str, bool]:
        instance(env_id)
        host.close(env_id)
        return {"closed": True}

    return guard(app, token=token, max_request_bytes=max_request_bytes, counters=host.counters)


@dataclass
class ServeEnvArgs:
    """Host instances of one env over HTTP for the http rollout pool (JSON only)."""

    env: str = "alfworld"
    """Env short name or gymnasium id to host."""
    port: int = 8765
    """TCP port to listen on."""
    host: str = "127.0.0.1"
    """Interface to bind. Keep loopback unless the network is trusted and a token is set."""
    token: str | None = None
    """Bearer token clients must send; defaults to $SDAR_GYM_TOKEN when set."""
    split: str | None = None
    """Data split for envs with splits (ALFWorld: train, valid_seen, valid_unseen)."""
    data_dir: str | None = None
    """Data folder for the env."""
    max_steps: int | None = None
    """Override the env's step limit."""
    env_kwargs: dict[str, str] = field(default_factory=dict)
    """Extra env constructor arguments (values parsed as JSON when they parse, else strings)."""
    max_envs: int = 64
    """Most env instances hosted at once."""
    max_request_bytes: int = MAX_REQUEST_BYTES
    """Largest request body accepted."""

    def run(self) -> None:
        check_port(self.port)
        from sdar_gym.registration import parse_env_kwargs

        kwargs = parse_env_kwargs(self.env_kwargs)
        for key in ("split", "data_dir", "max_steps"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        app = create_app(self.env, kwargs, resolve_token(self.token, self.host), self.max_envs, self.max_request_bytes)
        serve(app, self.host, self.port, "warning")
