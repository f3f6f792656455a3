"""Which Blosc codec should a new scan store use? Decode and encode MB/s per core, and ratio.

Frames (chunks of whole frames, as :func:`gpuproc.io.store.write_scan` makes them):

- ``synthetic_uint32``: Pilatus 1M frames of ``gpuproc waxs synth`` (Poisson counts on a
  background of ~5, Bragg spots, SAXS), gaps and bad pixels at 2^32 - 1;
- ``synthetic_int32``: the same scan as the detector writes signed frames, gaps -1 and 0.1 % bad
  pixels -2;
- ``real_*`` (a check, not used for the choice): a real Pilatus 6M CBF (int32, -1/-2) and a real
  Eiger 4M frame (uint32) from ``../shared/realdata`` when it is there.

Codecs: Blosc LZ4 and zstd at three levels each, without shuffle, with byte shuffle and with
bitshuffle, built exactly as zarr's ``BloscCodec`` builds them for the store's arrays (its
numcodecs ``Blosc``, typesize of the dtype), one thread (per core: zarr decodes a chunk per
thread). Times: median of ``--repeats`` after a warm-up (benchmarks/common.py), MB = 1e6 bytes
of uncompressed frames.

Choice: the codec with the lowest cost of reading a frame, ``1/decode + 1/(ratio * read)`` s/MB
(decode on one core plus reading the compressed bytes at ``--read-mb-s``, 1000 MB/s: a node's
share of a parallel file system), mean over the synthetic frames, among the codecs that encode
at least ``--min-encode-mb-s`` per core (ingest speed). The choice is what
``gpuproc.io.store.FRAME_CODEC`` should hold. As a check of what the choice gives the pipeline,
a scan store of 8 synthetic chunks is written with the previous default and with the choice
(``write_scan(codec=...)``) and read through zarr with a thread per CPU (ms per frame, as the
WAXS decode floor reads). Writes benchmarks/results/codec_cpu.json.

    python benchmarks/bench_codec.py [--frames 4] [--repeats 5] [--force]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Session, add_arguments, cpus, measure  # noqa: E402

from gpuproc.io.store import FRAME_CODEC, frames_per_chunk, write_scan  # noqa: E402
from gpuproc.synth.waxs import make_waxs_scan  # noqa: E402

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "waxs"
LEVELS = {"lz4": (1, 5, 9), "zstd": (1, 3, 5)}
SHUFFLES = ("noshuffle", "shuffle", "bitshuffle")
MB = 1e6


def synthetic_chunks(n_frames: int) -> dict[str, np.ndarray]:
    """One store chunk of Pilatus 1M frames, unsigned and signed."""
    out = {}
    for name, kw in (("synthetic_uint32", {}), ("synthetic_int32", {"signed": True, "bad_pixels": 1e-3})):
        scan = make_waxs_scan((1, n_frames), detector="Pilatus1M", seed=1, **kw)
        frames = scan.stack()
        out[name] = frames[: frames_per_chunk(scan.frame_shape, frames.dtype, n_frames)]
    return out


def real_chunks() -> dict[str, np.ndarray]:
    """Real frames from ../shared/realdata, one frame per chunk (as the store chunks them); {} without it."""
    out = {}
    cbf, eiger = REALDATA / "DLS_I03_smargon_0001.cbf.gz", REALDATA / "bitshuffle.h5"
    if cbf.exists():
        import fabio

        out["real_pilatus6M_int32"] = np.asarray(fabio.open(str(cbf)).data)[None]
    if eiger.exists():
        import h5py

        with h5py.File(eiger, "r") as f:
            out["real_eiger4M_uint32"] = np.asarray(f["/entry/data/data"][:1])
    return out


def blosc(cname: str, clevel: int, shuffle: str, dtype: np.dtype) -> Any:
    """The numcodecs Blosc object zarr's BloscCodec uses for an array of ``dtype``."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle, typesize=np.dtype(dtype).itemsize)._blosc_codec


def measure_codec(chunk: np.ndarray, cname: str, clevel: int, shuffle: str, repeats: int) -> dict[str, Any]:
    """Encode and decode MB/s (one thread) and compression ratio of one codec on one chunk."""
    codec = blosc(cname, clevel, shuffle, chunk.dtype)
    raw = np.ascontiguousarray(chunk)
    size = raw.nbytes / MB
    encoded = codec.encode(raw)
    decoded = np.frombuffer(codec.decode(encoded), dtype=raw.dtype).reshape(raw.shape)
    if not np.array_equal(decoded, raw):
        raise AssertionError(f"{cname} {clevel} {shuffle}: decoded chunk differs from the original")
    enc = measure(lambda: codec.encode(raw), size, repeats)
    dec = measure(lambda: codec.decode(encoded), size, repeats)
    return {
        "cname": cname, "clevel": clevel, "shuffle": shuffle,
        "ratio": raw.nbytes / len(encoded),
        "encode_mb_s_per_core": enc["items_per_s"],
        "encode_mb_s_range": [size / enc["max_s"], size / enc["min_s"]],
        "decode_mb_s_per_core": dec["items_per_s"],
        "decode_mb_s_range": [size / dec["max_s"], size / dec["min_s"]],
    }


def store_read(chunk: np.ndarray, codec: dict[str, Any], copies: int, repeats: int) -> dict[str, Any]:
    """ms per frame reading a scan store of ``copies`` chunks written with ``codec`` through zarr,
    a thread per CPU (as the WAXS decode floor reads), from the page cache."""
    import zarr

    n = len(chunk) * copies
    with tempfile.TemporaryDirectory() as tmp:
        path = write_scan((chunk for _ in range(copies)), Path(tmp) / "scan.zarr", n_frames=n,
                          frame_shape=chunk.shape[1:], dtype=chunk.dtype, scan_shape=(1, n), chunk_frames=len(chunk),
                          codec=codec)
        frames = zarr.open_array(str(path / "frames"), mode="r")
        ranges = [(k, k + len(chunk)) for k in range(0, n, len(chunk))]
        with ThreadPoolExecutor(cpus()) as pool:
            row = measure(lambda: list(pool.map(lambda r: frames[r[0]:r[1]], ranges)), n, repeats)
    return {**codec, "frames": n, "threads": cpus(), "ms_per_frame": row["per_item_ms"]}


def read_cost(row: dict[str, Any], read_mb_s: float) -> float:
    """Seconds per uncompressed MB: decode on one core + reading the compressed bytes."""
    return 1.0 / row["decode_mb_s_per_core"] + 1.0 / (row["ratio"] * read_mb_s)


def choose(rows: list[dict[str, Any]], kinds: list[str], read_mb_s: float, min_encode: float) -> dict[str, Any]:
    """The codec with the lowest mean read cost over ``kinds`` that encodes fast enough everywhere."""
    by_codec: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        if r["frames"] in kinds:
            by_codec.setdefault((r["cname"], r["clevel"], r["shuffle"]), []).append(r)
    scored = []
    for key, rs in by_codec.items():
        if min(r["encode_mb_s_per_core"] for r in rs) >= min_encode:
            scored.append((float(np.mean([read_cost(r, read_mb_s) for r in rs])), key))
    if not scored:
        raise SystemExit(f"no codec encodes at >= {min_encode} MB/s per core on {kinds}")
    cost, (cname, clevel, shuffle) = min(scored)
    return {"cname": cname, "clevel": clevel, "shuffle": shuffle, "read_cost_s_per_mb": cost}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=4, help="synthetic frames per chunk (the store's: 4 of 1M)")
    ap.add_argument("--read-mb-s", type=float, default=1000.0, help="storage read bandwidth for the choice")
    ap.add_argument("--min-encode-mb-s", type=float, default=100.0, help="slowest acceptable encode per core")
    args = add_arguments(ap).parse_args()
    session = Session("codec_cpu", force=args.force)
    import numcodecs.blosc

    numcodecs.blosc.use_threads = False  # one thread per chunk, as under zarr's chunk threads
    chunks = {**synthetic_chunks(args.frames), **real_chunks()}
    rows = []
    for kind, chunk in chunks.items():
        for cname, levels in LEVELS.items():
            for clevel in levels:
                for shuffle in SHUFFLES:
                    row = {"frames": kind, **measure_codec(chunk, cname, clevel, shuffle, args.repeats)}
                    rows.append(row)
                    print(f"{kind:22s} {cname:4s} {clevel} {shuffle:10s} ratio {row['ratio']:6.2f}  "
                          f"encode {row['encode_mb_s_per_core']:7.0f} MB/s  decode {row['decode_mb_s_per_core']:7.0f}"
                          " MB/s per core", flush=True)
    synthetic = [k for k in chunks if k.startswith("synthetic")]
    chosen = choose(rows, synthetic, args.read_mb_s, args.min_encode_mb_s)
    in_cache = choose(rows, synthetic, float("inf"), args.min_encode_mb_s)
    real = [k for k in chunks if k.startswith("real")]
    previous = {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"}  # the store's default before issue 16

    def on(kinds: list[str], codec: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in rows if r["frames"] in kinds and all(r[k] == codec[k] for k in ("cname", "clevel", "shuffle"))]

    codec_of = {k: v for k, v in chosen.items() if k != "read_cost_s_per_mb"}
    through_store = [store_read(chunks["synthetic_uint32"], c, 8, args.repeats) for c in (previous, codec_of)]
    print(f"chosen at {args.read_mb_s:.0f} MB/s reads: {chosen}; from page cache: {in_cache}")
    for row in through_store:
        print(f"store read through zarr, {row['threads']} threads: {row['cname']} {row['clevel']} {row['shuffle']}: "
              f"{row['ms_per_frame']['median']:.2f} ms/frame ({row['ms_per_frame']['min']:.2f}-"
              f"{row['ms_per_frame']['max']:.2f})")
    print(f"the store's default (gpuproc.io.store.FRAME_CODEC): {FRAME_CODEC}")
    session.write({
        "benchmark": "bench_codec.py",
        "question": "decode/encode MB/s per core and ratio of Blosc codecs on detector frames; the store default",
        "chunks": {k: {"shape": list(v.shape), "dtype": str(v.dtype), "mb": v.nbytes / MB} for k, v in chunks.items()},
        "threads": 1,
        "rule": {"cost_s_per_mb": "1/decode_mb_s_per_core + 1/(ratio * read_mb_s), mean over the synthetic frames",
                 "read_mb_s": args.read_mb_s, "min_encode_mb_s_per_core": args.min_encode_mb_s},
        "chosen": chosen,
        "chosen_from_page_cache": in_cache,
        "store_default": FRAME_CODEC,
        "previous_default": previous,
        "chosen_vs_previous": {"chosen": on(synthetic + real, chosen), "previous": on(synthetic + real, previous)},
        "store_read_ms_per_frame": through_store,
        "results": rows,
    })


if __name__ == "__main__":
    main()
