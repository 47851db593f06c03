"""FastAPI servers hosting sdar-gym envs and the Search-QA retriever. Their clients live in the gym
(``sdar_gym.rollout.pools.http_client``, ``sdar_gym.envs.search_qa.retrievers.HTTPRetriever``)."""
