"""Synthetic datasets with known ground truth, for demos, tests and benchmarks."""

#: detectors the synthetic WAXS scans are rendered on by ``gpuproc waxs synth`` (pyFAI names)
SYNTH_DETECTORS = ("Pilatus100k", "Pilatus300k", "Pilatus1M", "Eiger1M")
