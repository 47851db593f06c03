"""sdar-gym: an environment-first agent gym with pluggable RL learners (SDAR, GRPO, baselines).

Importing this package registers the gymnasium ids (``sdar_gym/ALFWorld-v0``, ...). It never
imports torch.
"""
from sdar_gym.core import INFO_KEYS, ConfigError, DataError, SdarGymError, StepInfo, TextEnv
from sdar_gym.registration import make_env, register_envs
from sdar_gym.specs import ENV_SPECS, EnvSpec

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ENV_SPECS",
    "EnvSpec",
    "INFO_KEYS",
    "ConfigError",
    "DataError",
    "SdarGymError",
    "StepInfo",
    "TextEnv",
    "make_env",
    "register_envs",
]
