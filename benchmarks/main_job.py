"""The main job as a new user runs it, timed: ``sdar-gym train --learner sdar --env alfworld``, no other flag.

In a fresh ``SDAR_GYM_HOME`` it builds the default game set and the built-in tiny policy (first use),
then trains with the CPU preset, validating on held-out games. The log is read back for the time of
each first-use stage (the progress lines), ``sft.json`` for the warm start's teacher − student gap,
and the run's ``metrics.jsonl`` for step times, rollout success, SDAR's gate and held-out success.
Writes ``benchmarks/results/main_job.json`` (``--out`` names another).

    python benchmarks/main_job.py                      # the whole job (1 to 1.5 hours on 2 cores)
    python benchmarks/main_job.py --keep runs/main_job # the same, keeping home, run and log to plot
    python benchmarks/main_job.py --max-steps 10       # stop after the step-10 validation
    python benchmarks/main_job.py --max-steps 1 --out main_job_first_use_build   # the first-use build, mostly
    python benchmarks/main_job.py --summarize RUN_DIR --home HOME --log LOG   # a run made by hand
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tyro  # noqa: E402

from benchmarks.common import write_result  # noqa: E402
from learners.run_log import read_metrics  # noqa: E402

STAGE = re.compile(r"^\[(?P<stage>[^\]]+)\] (?P<done>\d+)(?:/(?P<total>\d+))?.*?, (?P<elapsed>\d+)s elapsed")


@dataclass
class Args:
    max_steps: int | None = None
    """Stop the job once this many steps are logged (None: run it to the end)."""
    summarize: Path | None = None
    """Summarize this existing run folder instead of running the job (with --home and --log)."""
    home: Path | None = None
    """The SDAR_GYM_HOME of the summarized run (where its tiny policy's sft.json is)."""
    log: Path | None = None
    """The summarized run's log (stdout and stderr of sdar-gym train)."""
    note: str = ""
    """How the run was made, copied into the JSON as given."""
    keep: Path | None = None
    """Run in this folder (home/, run/, train.log) and keep it, to plot or inspect later (None: a temporary folder)."""
    out: str = "main_job"
    """Name of the JSON written under ``benchmarks/results/`` (e.g. ``main_job_first_use_build`` for a
    ``--max-steps 1`` run that measures the first-use build, leaving the whole job's JSON as it is)."""


def stage_seconds(text: str) -> dict[str, float]:
    """Last elapsed time printed by each progress stage of a log."""
    seconds: dict[str, float] = {}
    for line in text.splitlines():
        m = STAGE.match(line.strip())
        if m:
            seconds[m["stage"]] = float(m["elapsed"])
    return seconds


def summary(run_dir: Path, home: Path, log: Path, wall_s: float | None) -> dict:
    rows = read_metrics(run_dir)
    steps = [r for r in rows if r["step"] > 0 and "perf/step_s" in r]
    evals = [{"step": r["step"], "success": r["eval/success"], "episodes": r["eval/episodes"], "seconds": r.get("perf/eval_s")}
             for r in rows if r.get("eval/success") is not None]
    sft = json.loads((home / "models" / "tiny-alfworld" / "sft.json").read_text())
    text = log.read_text(encoding="utf-8", errors="replace")

    def mean(key: str) -> float | None:
        values = [r[key] for r in steps if key in r]
        return statistics.fmean(values) if values else None

    return {
        "wall_s": wall_s,
        "first_use_stages_s": stage_seconds(text),
        "warm_start": {k: sft[k] for k in ("seconds", "demonstration_turns", "epochs", "final_loss", "held_out")},
        "preset_line": next((line for line in text.splitlines() if line.startswith("CPU preset")), None),
        "steps_logged": len(steps),
        "step_s": {"mean": mean("perf/step_s"), "rollout_mean": mean("perf/rollout_s")},
        "rollout_success": [round(r.get("rollout/all/success", 0.0), 4) for r in steps],
        "sdar": {k: mean(k) for k in ("sdar/gate_mean", "sdar/gate_active_ratio", "sdar/teacher_gap_mean")},
        "held_out": evals,
        "last_line": text.strip().splitlines()[-1] if text.strip() else None,
    }


def run_job(max_steps: int | None, keep: Path | None) -> dict:
    with tempfile.TemporaryDirectory() if keep is None else contextlib.nullcontext(keep) as tmp:
        Path(tmp).mkdir(parents=True, exist_ok=True)
        home, run_dir, log = Path(tmp) / "home", Path(tmp) / "run", Path(tmp) / "train.log"
        env = {**os.environ, "SDAR_GYM_HOME": str(home)}
        command = [sys.executable, "-m", "sdar_gym.cli", "train", "--learner", "sdar", "--env", "alfworld", "--output", str(run_dir)]
        start = time.perf_counter()
        with log.open("w") as out:
            job = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            while job.poll() is None:
                time.sleep(10)
                done = [r for r in read_metrics(run_dir) if r["step"] > 0] if (run_dir / "metrics.jsonl").exists() else []
                if max_steps is not None and len(done) >= max_steps:
                    job.terminate()
                    job.wait()
        result = summary(run_dir, home, log, time.perf_counter() - start)
        result["stopped_after_steps"] = max_steps
        return result


def main(args: Args) -> None:
    if args.summarize is not None:
        if args.home is None or args.log is None:
            raise SystemExit("--summarize needs --home and --log")
        result = summary(args.summarize, args.home, args.log, None)
    else:
        if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep} is not empty: the job is measured from a fresh home")
        result = run_job(args.max_steps, args.keep)
    result["note"] = args.note
    print(json.dumps(result, indent=1))
    write_result(args.out, result)


if __name__ == "__main__":
    main(tyro.cli(Args))
