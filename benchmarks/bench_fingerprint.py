"""What fingerprinting a run's inputs costs (gpuproc.run.fingerprint): a 2,000-frame scan store,
a PONI file, and the same store's full read for comparison.

Bytes read come from /proc/self/io (``rchar``: everything read through the kernel, cached or not);
the first call is reported apart (``setup_s``: cold caches), then benchmarks/common.py times one
untimed warm-up and the median (min, max) of ``--repeats`` calls with the files in the page cache.

Writes benchmarks/results/fingerprint_cpu.json (refused on a busy machine; ``--force``: scratch).

    python benchmarks/bench_fingerprint.py [--frames 2000] [--frame 512 512] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Session, add_arguments, measure, timed_setup  # noqa: E402

from gpuproc.io.store import open_scan, write_scan  # noqa: E402
from gpuproc.run.fingerprint import fingerprint  # noqa: E402


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def _measure(fn, repeat: int) -> dict[str, Any]:
    """The first call (set-up: cold caches) and its bytes read, then :func:`common.measure` of ``fn``."""
    r0 = _rchar()
    _, first = timed_setup(fn)
    read = _rchar() - r0
    return {**(measure(fn, 1, repeat) if repeat else {}), "setup_s": first, "bytes_read": read}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--frame", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    args = add_arguments(ap).parse_args()
    session = Session("fingerprint_cpu", force=args.force)
    h, w = args.frame
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "scan.zarr"
        block = 100

        def blocks():
            for _ in range(args.frames // block):
                yield rng.poisson(3.0, (block, h, w)).astype(np.uint32)

        write_scan(blocks(), store, n_frames=args.frames, frame_shape=(h, w), dtype=np.uint32,
                   scan_shape=(args.frames // 50, 50))
        poni = Path(tmp) / "geometry.poni"
        poni.write_text("poni_version: 2\nDetector: Pilatus1M\nDistance: 0.2\nPoni1: 0.08\nPoni2: 0.08\n"
                        "Rot1: 0\nRot2: 0\nRot3: 0\nWavelength: 1e-10\n")
        size = sum(p.stat().st_size for p in store.rglob("*") if p.is_file())
        n_chunks = sum(1 for p in (store / "frames" / "c").rglob("*") if p.is_file())
        result = {
            "store": {"frames": args.frames, "frame_shape": [h, w], "dtype": "uint32", "bytes_on_disk": size,
                      "chunk_files": n_chunks},
            "fingerprint_store": _measure(lambda: fingerprint(store), args.repeats),
            "fingerprint_poni": _measure(lambda: fingerprint(poni), args.repeats),
            "read_whole_store": _measure(lambda: np.asarray(open_scan(store).frames.sum()), 0),
        }
    for k, v in result.items():
        print(k, v)
    session.write(result)


if __name__ == "__main__":
    main()
