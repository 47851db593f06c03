"""Process, http and ray pools on real ALFWorld games: crash recovery, a live server on loopback,
and local Ray. Kept short: one or two episodes of a few turns each."""
from __future__ import annotations

import asyncio
import logging
import os
import signal

import httpx
import pytest
from rollout_support import ALFWORLD_KWARGS, TASK_BOOK, require_alfworld
from server_support import env_server

from sdar_gym.rollout.pools.http_client import RemoteEnv
from sdar_gym.core import INFO_KEYS, ConfigError
from sdar_gym.rollout import EnvWorkerError, ExpertPolicy, RandomPolicy, collect, make_pool


class KillWorkerMidEpisode:
    """A random policy that kills the env worker of episode 0 before its second step."""

    def __init__(self, kill) -> None:
        self.inner = RandomPolicy("alfworld")
        self.kill = kill

    async def generate(self, requests):
        for r in requests:
            if r.metadata["episode"] == 0 and r.metadata["turn"] == 1:
                self.kill()
        return await self.inner.generate(requests)


def test_process_pool_restarts_a_killed_worker(caplog) -> None:
    require_alfworld()

    async def main():
        pool = make_pool("process", "alfworld", 1, ALFWORLD_KWARGS)
        first_pid = pool.pids[0]
        try:
            policy = KillWorkerMidEpisode(lambda: os.kill(pool.pids[0], signal.SIGKILL))
            episodes = await collect(policy, pool, [TASK_BOOK], group_size=2, max_turns=2)
            return episodes, pool.metrics(), first_pid, pool.pids[0]
        finally:
            await pool.aclose()

    with caplog.at_level(logging.WARNING, logger="sdar_gym.rollout"):
        (crashed, survivor), metrics, first_pid, new_pid = asyncio.run(main())
    assert crashed.failed and len(crashed.turns) == 1 and not crashed.won
    assert f"pid {first_pid} exited with code {-signal.SIGKILL}" in crashed.failure_reason
    assert not survivor.failed and len(survivor.turns) == 2 and survivor.task_id == TASK_BOOK
    assert metrics["worker_restarts"] == 1 and new_pid != first_pid
    assert any("failed" in r.message for r in caplog.records)


def test_process_pool_surfaces_env_errors_and_bad_arguments() -> None:
    require_alfworld()
    with pytest.raises(ConfigError, match="num_envs"):
        make_pool("process", "alfworld", 0, ALFWORLD_KWARGS)
    with pytest.raises(ConfigError, match="unknown pool kind"):
        make_pool("threads", "alfworld")
    with pytest.raises(ConfigError, match="unknown ALFWorld split"):
        make_pool("process", "alfworld", 1, {**ALFWORLD_KWARGS, "split": "nope"})


TOKEN = "test-token"


@pytest.fixture(scope="module")
def server():
    """``sdar-gym serve env`` in a subprocess on a free loopback port."""
    require_alfworld()
    with env_server("--env", "alfworld", "--token", TOKEN, "--data-dir", ALFWORLD_KWARGS["data_dir"], "--split", "valid_seen",
                    "--max-steps", "20", "--max-request-bytes", "4096") as url:
        yield url


def test_server_validates_requests(server: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{server}/health").json()["env"] == "alfworld"
    assert httpx.get(f"{server}/metrics").status_code == 401
    assert httpx.post(f"{server}/envs", json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(f"{server}/envs", json={"env": "alfworld", "x": 1}, headers=auth).status_code == 422
    assert httpx.post(f"{server}/envs/nope/step", json={"action": "look"}, headers=auth).status_code == 404
    assert httpx.post(f"{server}/envs/nope/step", json={"action": "x" * 5000}, headers=auth).status_code == 413
    assert httpx.post(f"{server}/envs/nope/step", content=b"\x80\x04pickle", headers=auth).status_code == 422


def test_remote_env_behaves_like_a_local_env(server: str) -> None:
    with pytest.raises(ConfigError, match="401"):
        RemoteEnv(server)
    env = RemoteEnv(server, token=TOKEN, env="alfworld")
    try:
        obs, info = env.reset(options={"task_id": TASK_BOOK})
        assert set(INFO_KEYS) <= set(info) and info["task_id"] == TASK_BOOK and "book" in obs
        with pytest.raises(ConfigError, match="unknown ALFWorld task_id"):
            env.reset(options={"task_id": "no-such-game"})
        obs, reward, terminated, truncated, info = env.step("look")
        assert isinstance(obs, str) and reward == 0.0 and not terminated and not truncated and info["action_valid"]
        assert env.expert_action() and env.render() == obs
    finally:
        env.close()


def test_http_pool_runs_the_expert_and_recovers_a_lost_instance(server: str) -> None:
    async def main():
        pool = make_pool("http", "alfworld", 1, urls=[server], token=TOKEN)
        try:
            (episode,) = await collect(ExpertPolicy("alfworld"), pool, [TASK_BOOK], max_turns=8)
            env_id = pool.env_ids[0]
            async with httpx.AsyncClient() as client:  # lose the instance behind the pool's back
                await client.delete(f"{server}/envs/{env_id}", headers={"Authorization": f"Bearer {TOKEN}"})
            with pytest.raises(EnvWorkerError, match="no env"):
                await pool.step(0, "look")
            _, info = await pool.reset(0, options={"task_id": TASK_BOOK})  # a fresh instance took over
            return episode, pool.metrics(), info
        finally:
            await pool.aclose()

    episode, metrics, info = asyncio.run(main())
    assert episode.won and episode.turns[-1].reward == 10.0
    assert metrics["worker_restarts"] == 1 and info["task_id"] == TASK_BOOK

    async def mismatch():
        pool = make_pool("http", "alfworld", 1, {"split": "train"}, urls=server, token=TOKEN)
        try:
            await pool.reset(0, seed=0)
        finally:
            await pool.aclose()

    with pytest.raises(ConfigError, match="not the requested"):
        asyncio.run(mismatch())


def test_ray_pool_on_local_ray() -> None:
    require_alfworld()
    ray = pytest.importorskip("ray")
    try:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # no room for a local cluster here
        pytest.skip(f"local Ray did not start: {type(e).__name__}: {e}")

    async def main():
        pool = make_pool("ray", "alfworld", 1, ALFWORLD_KWARGS, num_cpus_per_env=0.5)
        try:
            first = await pool.pid(0)
            policy = KillWorkerMidEpisode(lambda: os.kill(first, signal.SIGKILL))
            episodes = await collect(policy, pool, [TASK_BOOK], group_size=2, max_turns=2)
            return episodes, pool.metrics(), first, await pool.pid(0)
        finally:
            await pool.aclose()

    try:
        (crashed, survivor), metrics, first, new = asyncio.run(main())
    finally:
        ray.shutdown()
    assert crashed.failed and "Ray actor died" in crashed.failure_reason and len(crashed.turns) == 1
    assert not survivor.failed and survivor.task_id == TASK_BOOK and len(survivor.turns) == 2
    assert metrics["worker_restarts"] == 1 and new != first


def test_serve_env_rejects_a_bad_port() -> None:
    from env_servers.env_server import ServeEnvArgs

    with pytest.raises(ConfigError, match="port"):
        ServeEnvArgs(port=70000).run()
