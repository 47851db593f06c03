"""``sdar-gym serve ...``: the servers' subcommands, plugged into the gym's CLI through the
entry-point group ``sdar_gym.commands`` (see pyproject.toml)."""
from __future__ import annotations

from env_servers.env_server import ServeEnvArgs
from env_servers.retriever import ServeRetrieverArgs

COMMANDS = {
    "serve": (
        {
            "env": (ServeEnvArgs, "Host instances of an env over HTTP (JSON) for the http rollout pool."),
            "retriever": (ServeRetrieverArgs, "Serve a saved search index with Search-R1's POST /retrieve schema."),
        },
        "Run servers: env hosts for the http rollout pool, the Search-QA retriever.",
    ),
}
