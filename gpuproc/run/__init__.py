"""Where and how a pipeline's blocks run: in this process, on dask.distributed workers (local
cores, one worker per GPU, an existing scheduler, SLURM through dask-jobqueue) or as SLURM job
array tasks; resumable through the results store's done marks.

Modules: :mod:`~gpuproc.run.settings` (``[job] executor`` and ``[slurm]``), :mod:`~gpuproc.run.blocks`
(the pipeline protocol and per-worker runner cache), :mod:`~gpuproc.run.executor` (execute, array
task steps), :mod:`~gpuproc.run.clusters` (dask clusters), :mod:`~gpuproc.run.sbatch` (job array
scripts), :mod:`~gpuproc.run.oom` (split a batch on device out-of-memory).
"""
