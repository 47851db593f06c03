"""The skill sets the project writes itself (``skills/data/<env>/*.md``) and a cached default library."""
from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from sdar_gym.core import ConfigError, SdarGymError, sdar_gym_home
from skills.embedders import Embedder, make_embedder
from skills.library import SkillLibrary
from skills.records import SKILL_SUFFIXES, Skill, load_skills, slugify

DATA_DIR = Path(__file__).resolve().parent / "data"


def builtin_envs() -> list[str]:
    """Envs that have a built-in skill set."""
    return sorted(p.name for p in DATA_DIR.iterdir() if p.is_dir())


def builtin_dir(env: str) -> Path:
    """The folder of ``env``'s built-in skills; ``env`` is a folder name, a short name or a gymnasium id."""
    if not (DATA_DIR / env).is_dir():
        from sdar_gym.registration import env_entry

        with contextlib.suppress(ConfigError):
            env = env_entry(env).skills_dir_name
    if not (DATA_DIR / env).is_dir():
        raise ConfigError(f"no built-in skills for env {env!r}; envs with skills: {', '.join(builtin_envs())}")
    return DATA_DIR / env


def load_builtin_skills(env: str) -> list[Skill]:
    """The project's own skills for ``env`` (general ones and one or more per task type)."""
    return load_skills(builtin_dir(env))


def _fingerprint(folder: Path, embedder_name: str) -> str:
    h = hashlib.sha256(embedder_name.encode())
    for f in sorted(p for p in folder.iterdir() if p.suffix in SKILL_SUFFIXES):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def default_library(env: str, embedder: Embedder | str | None = None, cache_dir: str | Path | None = None) -> SkillLibrary:
    """The library of ``env``'s built-in skills, built once and cached.

    The cache lives in ``cache_dir`` (default ``sdar_gym_home()/skills/<env>/<embedder>``) and is rebuilt
    when the skill files or the embedder change.
    """
    folder = builtin_dir(env)
    embedder = make_embedder(embedder)
    cache = Path(cache_dir) if cache_dir else sdar_gym_home() / "skills" / folder.name / slugify(embedder.name.replace("/", "-"), 120)
    fingerprint = _fingerprint(folder, embedder.name)
    if (cache / "library.json").is_file():
        try:
            library = SkillLibrary.load(cache, embedder)
        except SdarGymError:  # a stale or foreign cache is rebuilt, not an error
            library = None
        if library is not None and library.meta.get("fingerprint") == fingerprint:
            return library
    library = SkillLibrary.build(load_skills(folder), embedder, meta={"fingerprint": fingerprint, "built_from": f"builtin:{folder.name}"})
    library.save(cache)
    return library
