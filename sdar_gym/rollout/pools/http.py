"""The http pool: env instances on one or more env servers (``sdar-gym serve env``).

Slot i lives on ``urls[i % len(urls)]``. The servers fix the env and its arguments; the pool
checks that they host the env (and, when given, the ``env_kwargs``) it was asked for. If a
server loses an instance or cannot be reached, the slot gets a new instance (when the server is
back) and the call raises :class:`EnvWorkerError`.
"""
from __future__ import annotations

import asyncio
from typing import Any

from sdar_gym.core import ConfigError
from sdar_gym.rollout.pools.base import EnvPool, StepResult


class HttpPool(EnvPool):
    def __init__(
        self,
        env: str,
        num_envs: int = 1,
        env_kwargs: dict[str, Any] | None = None,
        urls: list[str] | str = "http://127.0.0.1:8765",
        token: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        super().__init__(env, num_envs, env_kwargs)
        from sdar_gym.rollout.pools.http_client import AsyncEnvClient

        urls = [urls] if isinstance(urls, str) else list(urls)
        if not urls:
            raise ConfigError("the http pool needs at least one server url")
        self._clients = [AsyncEnvClient(u, token, timeout_s) for u in urls]
        self._slot_client = [self._clients[i % len(urls)] for i in range(num_envs)]
        self._ids: list[str | None] = [None] * num_envs

    @property
    def env_ids(self) -> list[str | None]:
        """The server-side id of each slot's env instance (None until its first call)."""
        return list(self._ids)

    async def _ensure(self, slot: int) -> str:
        """The slot's env id, creating the remote instance on first use."""
        if self._ids[slot] is None:
            created = await self._slot_client[slot].create(self.env_name)
            if self.env_kwargs and created["env_kwargs"] != self.env_kwargs:
                raise ConfigError(
                    f"server {self._slot_client[slot].url} hosts {self.env_name} with {created['env_kwargs']}, "
                    f"not the requested {self.env_kwargs}"
                )
            self._ids[slot] = created["env_id"]
        return self._ids[slot]

    async def _run(self, slot: int, method: str, *args: Any) -> Any:
        import httpx

        from sdar_gym.rollout.pools.http_client import EnvServerError

        self._check_slot(slot)
        client = self._slot_client[slot]
        try:
            return await getattr(client, method)(await self._ensure(slot), *args)
        except (httpx.TransportError, EnvServerError, KeyError) as e:
            self._ids[slot] = None  # a fresh instance is created on the slot's next call
            raise self._worker_died(slot, f"{client.url} during {method!r}: {type(e).__name__}: {e}") from None

    async def reset(self, slot: int, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        self.counters["resets"] += 1
        out = await self._run(slot, "reset", seed, options)
        return out["observation"], out["info"]

    async def step(self, slot: int, action: str) -> StepResult:
        self.counters["steps"] += 1
        return StepResult(**(await self._run(slot, "step", action)))

    async def expert_action(self, slot: int) -> str | None:
        return await self._run(slot, "expert_action")

    async def aclose(self) -> None:
        closes = [self._slot_client[s].close(i) for s, i in enumerate(self._ids) if i is not None]
        await asyncio.gather(*closes, return_exceptions=True)
        await asyncio.gather(*(c.aclose() for c in self._clients))
        self._ids = [None] * self.num_envs
