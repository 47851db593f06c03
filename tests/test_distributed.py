"""Data parallel over turn samples: two gloo processes make exactly the update one process makes."""
from __future__ import annotations

import socket

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
mp = pytest.importorskip("torch.multiprocessing")

from distributed_support import rank_main, updated_parameters  # noqa: E402

from learners.distributed import DataParallel, current  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("learner", ["grpo", "sdar"])
def test_two_processes_update_like_one(learner, tmp_path) -> None:
    """Rank shares differ in token count, so a rank-local token-mean would give other weights."""
    out = tmp_path / "rank0.pt"
    mp.start_processes(rank_main, args=(2, free_port(), learner, str(out)), nprocs=2, start_method="spawn", join=True)
    two = torch.load(out, weights_only=True)
    one = updated_parameters(learner)
    assert two.keys() == one.keys() and one
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")


def test_one_process_is_the_identity() -> None:
    dp = current()
    assert dp == DataParallel(0, 1) and not dp.active
    assert dp.sum(3.0) == 3.0
    p = torch.nn.Parameter(torch.ones(2))
    dp.sync_gradients([p])
    assert p.grad is None


@pytest.mark.parametrize("flag", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_sharding_launch_configs_are_refused_not_ignored(flag, monkeypatch) -> None:
    from learners.distributed import init_from_env
    from sdar_gym.core import ConfigError

    monkeypatch.setenv(flag, "true")
    with pytest.raises(ConfigError, match=f"{flag} is set.*does not shard"):
        init_from_env()
