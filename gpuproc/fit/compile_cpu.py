"""Run-time builds of C++ kernels for the CPU path: the system C++ compiler, a shared library
cached by the hash of everything that goes into it, and compiler errors that name file and line.

The cache is ``kernels/`` in the user's gpuproc cache folder (:mod:`gpuproc.user_cache`:
``$GPUPROC_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpuproc``, else ``~/.cache/gpuproc``). A
library's file name carries the hash of its source text (which names the hash of the headers it
includes), the compiler (its version line), the flags and the CPU it is built for
(``-march=native``), so a changed header, compiler or machine builds anew and a cluster sharing a
home directory never loads a library built for another CPU. Builds write to temporary files and
rename them, so processes building the same library at once never see half-written files.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from gpuproc.kernels import CXX_FLAGS
from gpuproc.user_cache import cache_root

#: a compiler diagnostic: gcc/clang ``file:line:col: error: msg`` or NVRTC ``file(line): error: msg``
_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\s:()][^:()]*?)(?::(?P<line>\d+)(?::\d+)?|\((?P<pline>\d+)\)):\s*"
    r"(?:fatal\s+)?error\b:?\s*(?P<msg>.*)$"
)
_LOG_LINES = 40  # of the compiler's output, kept in an error message


class CompileError(ValueError):
    """A kernel source does not compile. The message's first line is the compiler's first error
    as ``file:line: error: message``; the compiler's output (first lines) follows."""

    def __init__(self, what: str, log: str, prefer_file: str | None = None):
        self.log = log
        head = first_error(log, prefer_file) or "the compiler gave no error line"
        lines = log.strip().splitlines()
        more = f"\n... ({len(lines) - _LOG_LINES} more lines)" if len(lines) > _LOG_LINES else ""
        super().__init__(f"{head}  [{what} does not compile]\n" + "\n".join(lines[:_LOG_LINES]) + more)


def first_error(log: str, prefer_file: str | None = None) -> str | None:
    """The first error of a compiler log as ``file:line: error: message`` (gcc, clang or NVRTC
    format), preferring one in ``prefer_file``; None when the log has no error line."""
    found = []
    for raw in log.splitlines():
        m = _DIAGNOSTIC.match(raw.strip())
        if m:
            found.append((m["file"], m["line"] or m["pline"], m["msg"].strip()))
    if not found:
        return None
    preferred = [e for e in found if prefer_file and Path(e[0]).name == Path(prefer_file).name]
    file, line, msg = (preferred or found)[0]
    return f"{file}:{line}: error: {msg}"


def cache_dir() -> Path:
    """The compiled-kernel cache: ``kernels/`` of the user's gpuproc cache folder
    (gpuproc.user_cache), created on first use; with caching off, a temporary folder of this
    process (each process builds anew)."""
    root = cache_root()
    path = _process_folder() if root is None else root / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def _process_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="gpuproc-kernels-"))


@functools.lru_cache(maxsize=1)
def compiler() -> tuple[str, str]:
    """The C++ compiler (``$CXX``, else c++, g++ or clang++ on PATH) and its version line."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        raise OSError("user models on the CPU need a C++17 compiler: none found ($CXX, c++, g++, clang++)")
    proc = subprocess.run([cxx, "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise OSError(f"the C++ compiler {cxx!r} does not run: {proc.stderr.strip()[:200]}")
    return cxx, proc.stdout.splitlines()[0] if proc.stdout else ""


#: gcc only inlines a large function (a model's dual-number value function, whose Dual<NP>
#: temporaries make a big stack frame before they are scalarised) into one that asks with
#: ``flatten`` (kernels/user_model.cuh) within these limits; the defaults leave a call per point
GCC_INLINE_PARAMS = ("--param", "large-stack-frame-growth=100000", "--param", "max-inline-insns-single=100000")


def flags() -> list[str]:
    """Compiler flags: those of the installed CPU kernels, for this machine's CPU, position
    independent, and with gcc the inlining limits of :data:`GCC_INLINE_PARAMS`."""
    native = ["-march=native"] if platform.machine().lower() in ("x86_64", "amd64") else []
    inline = [] if "clang" in compiler()[1].lower() else list(GCC_INLINE_PARAMS)
    return [*CXX_FLAGS, *native, *inline, "-shared", "-fPIC"]


@functools.lru_cache(maxsize=1)
def _cpu_id() -> str:
    """What -march=native depends on: the CPU's model name and feature flags."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    keep = [ln for ln in info.splitlines() if ln.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(dict.fromkeys(keep))


def source_hash(source: str) -> str:
    """Hex digest of a source, the compiler, its flags and the CPU."""
    h = hashlib.sha256()
    for part in (source, *compiler(), *flags(), _cpu_id()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def build_library(source: str, stem: str, include_dirs: Iterable[Path], what: str = "the kernel",
                  prefer_file: str | None = None) -> Path:
    """Compile C++ ``source`` (text) to a shared library in the cache, or find it there.

    Parameters
    ----------
    source : str
        The translation unit. The cache key is its text: a source that includes headers must
        carry their hash in it (e.g. in a comment) for a changed header to rebuild.
    stem : str
        Start of the file names (a readable name; the hash follows it).
    include_dirs : iterable of Path
        ``-I`` folders.
    what : str
        What is compiled, for the error message.
    prefer_file : str, optional
        File whose error the message leads with (the user's header).

    Returns
    -------
    Path
        The shared library (``<stem>-<hash>.so`` in :func:`cache_dir`).

    Raises
    ------
    CompileError
        When the source does not compile (message: the first error, with file and line).
    """
    include_dirs = list(include_dirs)
    key = source_hash(source)[:20]
    folder = cache_dir()
    lib = folder / f"{stem}-{key}.so"
    with _BUILDING:  # threads of one process build once; processes race safely (own temp files)
        if lib.is_file():
            return lib
        tmp = {ext: _temp_file(folder, stem, ext) for ext in (".cpp", ".so")}
        try:
            Path(tmp[".cpp"]).write_text(source)
            cmd = [compiler()[0], *flags(), *(f"-I{d}" for d in include_dirs), "-o", tmp[".so"], tmp[".cpp"]]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise CompileError(what, proc.stderr or proc.stdout, prefer_file)
            os.replace(tmp[".cpp"], lib.with_suffix(".cpp"))  # kept beside the library, for reading
            os.replace(tmp[".so"], lib)
        finally:
            for path in tmp.values():
                if os.path.exists(path):
                    os.unlink(path)
    return lib


_BUILDING = threading.Lock()


def _temp_file(folder: Path, stem: str, suffix: str) -> str:
    fd, path = tempfile.mkstemp(prefix=f".{stem}-", suffix=suffix, dir=folder)
    os.close(fd)
    return path
