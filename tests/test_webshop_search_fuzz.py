"""WebShop search takes any query: fuzzed text never raises, and one "'s" does not abort a collect."""
from __future__ import annotations

import asyncio
import random
import string

import pytest

from sdar_gym.envs.webshop.catalog import CatalogFiles, load_catalog
from sdar_gym.envs.webshop.env import WebShopEnv
from sdar_gym.envs.webshop.search import ProductSearch
from sdar_gym.rollout import ExpertPolicy, collect, make_pool

SPECIAL = ["men's shoes", "s", "'s", "s s s", "", "   ", "!!!", "the of and", "a an the", "über café 日本 🙂",
           "shoes" * 2000, "x " * 5000, "\x00\x01\n\t", "[search]", "women's", "it's a men's women's kid's"]


@pytest.fixture(scope="module")
def index(webshop_data_dir) -> ProductSearch:
    return ProductSearch(load_catalog(CatalogFiles.find(webshop_data_dir)).products)


def fuzzed_queries(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + string.punctuation + " 'sé日🙂\u200b"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(n)]


@pytest.mark.parametrize("query", SPECIAL)
def test_any_query_searches(index, query):
    hits = index.search(query)
    assert isinstance(hits, list) and len(hits) <= 50


def test_fuzzed_queries_search(index):
    for query in fuzzed_queries(500):
        assert len(index.search(query)) <= 50, query


def test_a_possessive_finds_what_the_plain_words_find(index):
    assert index.search("men's shoes") == index.search("men shoes")


def test_search_action_with_a_possessive_is_a_valid_step(webshop_data_dir):
    env = WebShopEnv(data_dir=webshop_data_dir, split="test", num_test_goals=5)
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("search[men's shoes]")
    assert info["action_valid"] and not terminated


class ExpertButOnePossessive(ExpertPolicy):
    """The expert, except that its first search of each episode adds "men's" to the query."""

    async def generate(self, requests):
        for r in requests:
            action = r.metadata.get("expert_action") or ""
            if r.metadata["turn"] == 0 and action.startswith("search["):
                r.metadata["expert_action"] = "search[men's " + action[len("search["):]
        return await super().generate(requests)


@pytest.mark.parametrize("kind", ["inline", "process"])
def test_collect_survives_a_possessive_search(webshop_data_dir, kind):
    env_kwargs = {"data_dir": str(webshop_data_dir), "split": "test", "num_test_goals": 4}

    async def main():
        pool = make_pool(kind, "webshop", 2, env_kwargs)
        try:
            return await collect(ExpertButOnePossessive("webshop"), pool, [0, 1], group_size=2, max_turns=15)
        finally:
            await pool.aclose()

    episodes = asyncio.run(main())
    assert len(episodes) == 4
    assert not any(e.failed for e in episodes), [e.failure_reason for e in episodes]
    assert any("men's" in t.action for e in episodes for t in e.turns)
