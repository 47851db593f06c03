"""The learners' subcommands of ``sdar-gym``, plugged into the gym's CLI through the entry-point
group ``sdar_gym.commands`` (see pyproject.toml). Each argument class lives beside the code it
drives, in a module that loads torch only when the command runs.
"""
from __future__ import annotations

from learners.evaluate import EvalArgs
from learners.plot import PlotArgs
from learners.sft import SFTArgs
from learners.trainer import TrainArgs

COMMANDS = {
    "train": (TrainArgs, "Train a policy with RL (sdar, grpo and the paper's baselines)."),
    "eval": (EvalArgs, "Evaluate a policy; print the paper's Table 1 breakdown."),
    "plot": (PlotArgs, "Save PNG curves (success, reward, gate, gap) of a training run."),
    "sft": (SFTArgs, "Build the built-in tiny policy: SFT warm start on expert demonstrations."),
}
