#!/bin/bash
# Prepare the results store once (array tasks only attach to it), then the array, then finalize.
set -euo pipefail
source /opt/gpuproc/venv/bin/activate
python -m gpuproc.cli waxs prepare /data/proposal/job.toml
array=$(sbatch --parsable array-cpu.sbatch)
sbatch --parsable --dependency=afterok:"${array%%;*}" finalize.sbatch
