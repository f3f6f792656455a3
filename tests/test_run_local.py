"""Executors give identical results: local threads vs a dask LocalCluster vs job-array tasks;
execution settings, CLI and SLURM scripts."""

import pytest
from click.testing import CliRunner
from run_helpers import assert_same_results, job_with_output, variant

from gpuproc.cli import main
from gpuproc.config import ConfigError
from gpuproc.run.blocks import task_blocks
from gpuproc.run.sbatch import slurm_memory, write_array_scripts
from gpuproc.run.settings import SlurmSection, parse_executor, results_config_json
from gpuproc.waxs.job import load_job
from gpuproc.waxs.pipeline import run_waxs


def test_local_cluster_equals_threads(job_file, reference):
    job = job_with_output(job_file, job_file.with_name("local_cluster.zarr"), executor="local-cluster", n_workers=2)
    assert_same_results(run_waxs(job), reference)


def test_array_tasks_via_cli_equal_threads(job_file, reference):
    job = variant(job_file, "array")
    cli = CliRunner()
    assert cli.invoke(main, ["waxs", "finalize", str(job)]).exit_code != 0  # nothing prepared yet
    r = cli.invoke(main, ["waxs", "prepare", str(job)])
    assert r.exit_code == 0 and "6 block(s)" in r.output, r.output
    for i in (2, 0):  # out of order, and one task missing: finalize refuses
        r = cli.invoke(main, ["waxs", "run", str(job), "--task-index", str(i), "--task-count", "3", "--no-progress"])
        assert r.exit_code == 0, r.output
    r = cli.invoke(main, ["waxs", "finalize", str(job)])
    assert r.exit_code != 0 and "not written" in r.output
    r = cli.invoke(main, ["waxs", "run", str(job), "--task-index", "1", "--task-count", "3", "--no-progress"])
    assert "blocks [2, 3]" in r.output
    assert cli.invoke(main, ["waxs", "finalize", str(job)]).exit_code == 0
    assert_same_results(job.with_name("array.zarr"), reference)


def test_resume_under_another_executor(job_file, reference):
    """Execution settings are not part of the recorded configuration: a run resumes under any executor."""
    a, b = load_job(job_file), load_job(job_file)
    b.job.executor, b.job.n_workers = "local-cluster", 3
    b.slurm.partition = "gpu"
    assert results_config_json(a) == results_config_json(b)


def test_task_blocks_split_the_scan():
    shares = [task_blocks(10, i, 4) for i in range(4)]
    assert sum(shares, []) == list(range(10)) and [len(s) for s in shares] == [3, 3, 2, 2]
    with pytest.raises(ValueError):
        task_blocks(10, 4, 4)


def test_executor_keys_are_checked(job_file, tmp_path):
    assert parse_executor("scheduler:tcp://h:8786").address == "tcp://h:8786"
    assert parse_executor("scheduler", scheduler_address="tcp://h:1").address == "tcp://h:1"
    for bad in ("mpi", "scheduler", "threads:tcp://h:1"):
        with pytest.raises(ValueError):
            parse_executor(bad)
    text = job_file.read_text().replace("[job]\n", '[job]\nexecutor = "gpus"\n', 1)
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(ConfigError, match="executor"):
        load_job(tmp_path / "bad.toml")


def test_cuda_executor_without_dask_cuda_says_so(job_file, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "dask_cuda", None)  # import fails even where it is installed
    job = job_with_output(job_file, job_file.with_name("cuda.zarr"), executor="cuda")
    with pytest.raises(RuntimeError, match="dask-cuda"):
        run_waxs(job)


def test_slurm_scripts(job_file, tmp_path):
    s = SlurmSection(partition="gpu", gpus=2, cores=8, memory="32GB", array_size=5,
                     prologue=["module load cuda/12", "source /opt/venv/bin/activate"],
                     job_extra_directives=["--constraint=a100"])
    scripts = write_array_scripts(job_file, "waxs", s, tmp_path / "slurm", tmp_path / "logs")
    array, final, submit = (p.read_text() for p in (scripts.array, scripts.finalize, scripts.submit))
    for line in ("#SBATCH --array=0-4", "#SBATCH --partition=gpu", "#SBATCH --gres=gpu:2", "#SBATCH --mem=32G",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --constraint=a100", "module load cuda/12",
                 f"#SBATCH --output={tmp_path / 'logs'}/%x-%A_%a.out",
                 '--task-index "$SLURM_ARRAY_TASK_ID" --task-count 5'):
        assert line in array, line
    assert f"waxs finalize {job_file.resolve()}" in final and "--array" not in final
    assert submit.index("waxs prepare") < submit.index("sbatch --parsable") < submit.index("afterok")
    assert slurm_memory("500 MiB") == "500M"


def test_slurm_command_prints_scripts(job_file):
    r = CliRunner().invoke(main, ["waxs", "slurm", str(job_file), "--array", "3", "--partition", "cpu"])
    assert r.exit_code == 0, r.output
    assert "#SBATCH --array=0-2" in r.output and "#SBATCH --partition=cpu" in r.output
    assert "--gres" not in r.output and "submit with:" in r.output


def test_unknown_cli_executor_is_a_usage_error(job_file):
    r = CliRunner().invoke(main, ["waxs", "run", str(job_file), "--executor", "mpi"])
    assert r.exit_code == 2 and "executor" in r.output
