"""SLURM job arrays without Dask: a prepare step, an array whose task i computes its slice of
the blocks, and a finalize job that depends on the array (``--dependency=afterok``).

:func:`write_array_scripts` writes three files for a job file::

    array.sbatch     #SBATCH --array=0-(N-1); task i: gpuproc <pipeline> run JOB --task-index i --task-count N
    finalize.sbatch  gpuproc <pipeline> finalize JOB
    submit.sh        gpuproc <pipeline> prepare JOB (creates the results store once, before the
                     tasks write into it), then sbatch array.sbatch, then sbatch
                     --dependency=afterok:<array id> finalize.sbatch

:func:`submit` does what ``submit.sh`` does, from Python.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from gpuproc.run.settings import SlurmSection


@dataclass(frozen=True)
class ArrayScripts:
    """The files of one job array (see the module docstring)."""

    array: Path
    finalize: Path
    submit: Path


def slurm_memory(memory: str) -> str:
    """A dask-style size ("16GB", "16 GiB", "500MB") as a ``--mem`` value ("16G", "500M")."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", memory, re.IGNORECASE)
    if m is None:
        raise ValueError(f"[slurm] memory: expected e.g. '16GB', got {memory!r}")
    return m.group(1) + m.group(2).upper()


def _header(s: SlurmSection, name: str, log: Path, extra: list[str]) -> list[str]:
    lines = ["#!/bin/bash", f"#SBATCH --job-name={name}", *extra]
    if s.partition:
        lines.append(f"#SBATCH --partition={s.partition}")
    if s.account:
        lines.append(f"#SBATCH --account={s.account}")
    lines += [f"#SBATCH --cpus-per-task={s.cores}", f"#SBATCH --mem={slurm_memory(s.memory)}",
              f"#SBATCH --time={s.walltime}", f"#SBATCH --output={log}"]
    if s.gpus:
        lines.append(f"#SBATCH --gres=gpu:{s.gpus}")
    lines += [f"#SBATCH {d}" for d in s.job_extra_directives]
    return lines + ["set -euo pipefail", *s.prologue]


def write_array_scripts(job_file: Path, pipeline: str, s: SlurmSection, directory: Path,
                        log_directory: Path) -> ArrayScripts:
    """Write ``array.sbatch``, ``finalize.sbatch`` and ``submit.sh`` for ``job_file`` into ``directory``.

    Parameters
    ----------
    job_file : Path
        The job (TOML); written into the scripts as an absolute path.
    pipeline : str
        The CLI group that runs it ("waxs", "pl").
    s : SlurmSection
        Resources; ``s.array_size`` tasks share the blocks.
    directory, log_directory : Path
        Where the scripts go, and where SLURM writes the jobs' output (``%x-%A_%a.out``).
    """
    job = shlex.quote(str(Path(job_file).resolve()))
    cli = f"{shlex.quote(s.python or sys.executable)} -m gpuproc.cli {pipeline}"
    name = f"gpuproc-{pipeline}-{Path(job_file).stem}"
    directory.mkdir(parents=True, exist_ok=True)
    log_directory.mkdir(parents=True, exist_ok=True)
    n = s.array_size
    array = _header(s, name, log_directory / "%x-%A_%a.out", [f"#SBATCH --array=0-{n - 1}"]) + [
        f'{cli} run {job} --task-index "$SLURM_ARRAY_TASK_ID" --task-count {n} --no-progress']
    final = _header(s, name + "-finalize", log_directory / "%x-%j.out", []) + [f"{cli} finalize {job}"]
    out = ArrayScripts(directory / "array.sbatch", directory / "finalize.sbatch", directory / "submit.sh")
    submit = ["#!/bin/bash", "# prepare the results store once, then the array, then finalize after it",
              "set -euo pipefail", *s.prologue, f"{cli} prepare {job}",
              f"array=$(sbatch --parsable {shlex.quote(str(out.array))})",
              f'sbatch --parsable --dependency=afterok:"${{array%%;*}}" {shlex.quote(str(out.finalize))}']
    for path, lines in ((out.array, array), (out.finalize, final), (out.submit, submit)):
        path.write_text("\n".join(lines) + "\n")
    out.submit.chmod(0o755)
    return out


def submit(scripts: ArrayScripts) -> tuple[str, str]:
    """``sbatch`` the array, then the finalize job depending on it; returns their job ids.

    The results store must be prepared first (:func:`gpuproc.run.executor.prepare`).
    """
    array = _sbatch([str(scripts.array)])
    return array, _sbatch([f"--dependency=afterok:{array}", str(scripts.finalize)])


def _sbatch(args: list[str]) -> str:
    try:
        done = subprocess.run(["sbatch", "--parsable", *args], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise RuntimeError("sbatch not found: submit from a SLURM login node, or run submit.sh there") from None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"sbatch {' '.join(args)} failed: {exc.stderr.strip()}") from None
    return done.stdout.strip().split(";")[0]
