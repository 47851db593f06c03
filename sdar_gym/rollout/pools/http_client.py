"""Clients of the env server (``sdar-gym serve env``): :class:`RemoteEnv` behaves like a local TextEnv;
:class:`AsyncEnvClient` is what the http rollout pool uses. They speak JSON over HTTP and import
nothing from ``env_servers``."""
from __future__ import annotations

from typing import Any

import httpx

from sdar_gym.core import ConfigError, SdarGymError, TextEnv


class EnvServerError(SdarGymError):
    """The env server could not be reached, or failed on its side (5xx)."""


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _check(response: httpx.Response) -> Any:
    """The response's JSON, or a clear error: 4xx -> ConfigError (bad request), 5xx -> EnvServerError."""
    if response.is_success:
        return response.json()
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    message = f"{response.request.method} {response.request.url.path}: HTTP {response.status_code}: {detail}"
    if response.status_code == 404:
        raise KeyError(message)
    if response.status_code < 500:
        raise ConfigError(message)
    raise EnvServerError(message)


class RemoteEnv(TextEnv):
    """One env instance on a server, used exactly like the local env it hosts."""

    def __init__(self, url: str, token: str | None = None, env: str | None = None, timeout_s: float = 120.0) -> None:
        super().__init__()
        self._client = httpx.Client(base_url=url, headers=_headers(token), timeout=timeout_s)
        try:
            created = _check(self._client.post("/envs", json={"env": env}))
        except httpx.TransportError as e:
            raise EnvServerError(f"cannot reach env server at {url}: {e}") from None
        self.env_id: str = created["env_id"]
        self.env_name: str = created["env"]
        self.env_kwargs: dict[str, Any] = created["env_kwargs"]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        out = _check(self._client.post(f"/envs/{self.env_id}/reset", json={"seed": seed, "options": options}))
        self._last_obs = out["observation"]
        return out["observation"], out["info"]

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self.check_action(action)
        out = _check(self._client.post(f"/envs/{self.env_id}/step", json={"action": action}))
        self._last_obs = out["observation"]
        return out["observation"], out["reward"], out["terminated"], out["truncated"], out["info"]

    def expert_action(self) -> str | None:
        return _check(self._client.get(f"/envs/{self.env_id}/expert_action"))["action"]

    def close(self) -> None:
        if not self._client.is_closed:
            try:
                _check(self._client.delete(f"/envs/{self.env_id}"))
            except (httpx.TransportError, SdarGymError, KeyError):
                pass  # the server is gone or already closed it: nothing left to free
            self._client.close()


class AsyncEnvClient:
    """Async calls on env instances of one server (used by :class:`~sdar_gym.rollout.pools.http.HttpPool`)."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 120.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(base_url=url, headers=_headers(token), timeout=timeout_s)

    async def create(self, env: str) -> dict[str, Any]:
        return _check(await self._client.post("/envs", json={"env": env}))

    async def reset(self, env_id: str, seed: int | None, options: dict[str, Any] | None) -> dict[str, Any]:
        return _check(await self._client.post(f"/envs/{env_id}/reset", json={"seed": seed, "options": options}))

    async def step(self, env_id: str, action: str) -> dict[str, Any]:
        return _check(await self._client.post(f"/envs/{env_id}/step", json={"action": action}))

    async def expert_action(self, env_id: str) -> str | None:
        return _check(await self._client.get(f"/envs/{env_id}/expert_action"))["action"]

    async def close(self, env_id: str) -> None:
        _check(await self._client.delete(f"/envs/{env_id}"))

    async def metrics(self) -> dict[str, Any]:
        return _check(await self._client.get("/metrics"))

    async def aclose(self) -> None:
        await self._client.aclose()
