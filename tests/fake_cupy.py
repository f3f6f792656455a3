"""A stand-in for the CuPy calls of gpuproc's device data flow, on NumPy, that keeps a log.

Device arrays are :class:`DeviceArray`, a NumPy subclass that, like CuPy, refuses to mix with
host (plain NumPy) arrays in operations; indexing a device array with a host index array counts
as an upload of the index (CuPy copies it). Every host-to-device copy (``asarray``, ``array``,
``ndarray.set``, host index arrays), device-to-host copy (``get``), event record and wait, and
every launch (ufuncs, functions, sparse products, ``cupyx.scipy.ndimage`` filters, kernels) is
logged with the thread and the stream current at the time (``with stream:``), so tests can check
bytes, counts and order; the log is ``fake.trace`` (``fake.log`` is the logarithm, as in
CuPy). ``cupyx.scipy.ndimage`` runs scipy.ndimage's own function on the device
arrays' data; :func:`cpu_kernels` stands in for the fit kernel (the CPU library called with the
kernel's own argument list).

Not caught: ``numpy.asarray(device_array)`` (CuPy refuses it; a NumPy subclass converts quietly).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import re

import numpy as np
import scipy.ndimage
import scipy.sparse

from gpuproc.fit import cpu, gpu
from gpuproc.fit.models import get_model
from gpuproc.fit.options import ESTIMATORS, ESTIMATOR_TYPES


@dataclass
class Op:
    kind: str  #: "h2d", "d2h", "launch", "record", "wait", "sync", "pinned"
    stream: str  #: name of the stream it was issued on
    nbytes: int = 0
    what: str = ""  #: function / source description
    dtype: Any = None
    shape: tuple = ()
    pinned: bool = False  #: h2d: the source lies in pinned memory
    thread: str = field(default_factory=lambda: threading.current_thread().name)
    event: Any = None


class Log:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.lock = threading.Lock()
        self.hooks: list[Any] = []  #: called with each Op after it is logged

    def add(self, op: Op) -> None:
        with self.lock:
            self.ops.append(op)
        for hook in self.hooks:
            hook(op)

    def of(self, kind: str) -> list[Op]:
        with self.lock:
            return [o for o in self.ops if o.kind == kind]


class Stream:
    def __init__(self, log: Log, name: str, non_blocking: bool = False) -> None:
        self.log, self.name, self.non_blocking = log, name, non_blocking

    def __enter__(self) -> Stream:
        _stack().append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        _stack().pop()

    def record(self, event: Event | None = None) -> Event:
        event = event or Event(self.log)
        self.log.add(Op("record", self.name, event=event))
        return event

    def wait_event(self, event: Event) -> None:
        self.log.add(Op("wait", self.name, event=event))

    def synchronize(self) -> None:
        self.log.add(Op("sync", self.name))


class Event:
    def __init__(self, log: Log) -> None:
        self.log = log

    def synchronize(self) -> None:
        self.log.add(Op("sync", "host", event=self))


_local = threading.local()


def _stack() -> list:
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


class Pinned(bytearray):
    """Page-locked host memory (here: a bytearray that says so)."""


def _is_pinned(a: np.ndarray) -> bool:
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    return isinstance(base.obj if isinstance(base, memoryview) else base, Pinned)


class DeviceArray(np.ndarray):
    """A device array: NumPy memory that refuses host operands, logs copies and launches."""

    __module__ = "cupy._core.core"  # what gpuproc.backend.is_device_array looks at
    fake: FakeCupy  # the installed fake (set by FakeCupy)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        f = self.fake
        f.refuse_host((inputs, kwargs), ufunc.__name__)
        f.launch(f"{ufunc.__name__}.{method}")
        result = getattr(ufunc, method)(*_plain(inputs), **_plain(kwargs))
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        f = self.fake
        f.refuse_host((args, kwargs), func.__name__)
        f.launch(func.__name__)
        return _wrap(func(*_plain(args), **_plain(kwargs)))

    def __getitem__(self, key):
        self.fake.upload_index(key)
        return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), _plain(key)))

    def __setitem__(self, key, value):
        self.fake.upload_index(key)
        if type(value) is np.ndarray:
            self.fake.h2d(value, "setitem value")
        np.ndarray.__setitem__(self.view(np.ndarray), _plain(key), _plain(value))

    def get(self, stream: Any = None) -> np.ndarray:
        f = self.fake
        f.trace.add(Op("d2h", f.current().name, self.nbytes, "get", self.dtype, self.shape))
        return np.array(self.view(np.ndarray))

    def set(self, arr: np.ndarray, stream: Stream | None = None) -> None:
        f = self.fake
        if type(arr) is not np.ndarray or arr.shape != self.shape or arr.dtype != self.dtype:  # as CuPy checks
            raise ValueError(f"set: a host {self.dtype} array of shape {self.shape} is needed, got {type(arr)} "
                             f"{getattr(arr, 'dtype', None)} {np.shape(arr)}")
        f.trace.add(Op("h2d", (stream or f.current()).name, arr.nbytes, "set", arr.dtype, arr.shape,
                     pinned=_is_pinned(arr) and stream is not None))
        np.copyto(self.view(np.ndarray), arr)


def _plain(obj: Any) -> Any:
    if isinstance(obj, DeviceArray):
        return obj.view(np.ndarray)
    if isinstance(obj, tuple):
        return tuple(_plain(o) for o in obj)
    if isinstance(obj, list):
        return [_plain(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _wrap(obj: Any) -> Any:
    if type(obj) is np.ndarray:
        return obj.view(DeviceArray)
    if isinstance(obj, tuple):
        return tuple(_wrap(o) for o in obj)
    if isinstance(obj, list):
        return [_wrap(o) for o in obj]
    return obj


def _host_arrays(obj: Any) -> list[np.ndarray]:
    if type(obj) is np.ndarray:
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in _host_arrays(o)]
    if isinstance(obj, dict):
        return [a for o in obj.values() for a in _host_arrays(o)]
    return []


class CSRMatrix:
    """cupyx.scipy.sparse.csr_matrix over device arrays."""

    def __init__(self, fake: FakeCupy, arrays: tuple, shape: tuple[int, int]) -> None:
        fake.refuse_host(arrays, "csr_matrix")
        self.fake, self.shape = fake, shape
        self._m = scipy.sparse.csr_matrix(tuple(_plain(a) for a in arrays), shape=shape)

    def __matmul__(self, x: Any) -> Any:
        self.fake.refuse_host(x, "csr_matrix @")
        self.fake.launch("spmm")
        return _wrap(np.asarray(self._m @ _plain(x)))


class NdImage(types.ModuleType):
    """cupyx.scipy.ndimage: each function is scipy.ndimage's on the device arrays' data, one launch;
    host arrays are refused (as CuPy's functions refuse NumPy input)."""

    def __init__(self, fake: FakeCupy) -> None:
        super().__init__("cupyx.scipy.ndimage")
        self._fake = fake

    def __getattr__(self, name: str) -> Any:
        target, fake = getattr(scipy.ndimage, name), self._fake

        def device_function(*args: Any, **kwargs: Any) -> Any:
            fake.refuse_host((args, kwargs), name)
            if not isinstance(args[0], DeviceArray):
                raise TypeError(f"{name}: input must be a cupy.ndarray, got {type(args[0])}")
            fake.launch(f"ndimage.{name}")
            return _wrap(target(*_plain(args), **_plain(kwargs)))

        return device_function


class CUDARuntimeError(RuntimeError):
    def __init__(self, status: int) -> None:
        super().__init__(f"cudaError {status}")
        self.status = status


class FakeCupy(types.ModuleType):
    """The ``cupy`` module: NumPy's functions on device arrays, CUDA streams/events/pinned memory."""

    _CREATE = ("empty", "zeros", "ones", "full", "arange", "empty_like", "zeros_like", "ones_like", "full_like",
               "linspace", "eye", "identity")

    def __init__(self, free: int = 6 << 30) -> None:
        super().__init__("cupy")
        self.trace = Log()
        DeviceArray.fake = self
        self.ndarray = DeviceArray
        self.null = Stream(self.trace, "null")
        memory = types.ModuleType("cupy.cuda.memory")
        memory.OutOfMemoryError = type("OutOfMemoryError", (MemoryError,), {})
        runtime = types.SimpleNamespace(getDeviceCount=lambda: 1, memGetInfo=lambda: (free, 80 << 30))
        self.streams: list[Stream] = []

        def make_stream(non_blocking: bool = False) -> Stream:
            s = Stream(self.trace, f"stream{len(self.streams) + 1}", non_blocking)
            self.streams.append(s)
            return s

        def alloc_pinned_memory(n: int) -> Pinned:
            self.trace.add(Op("pinned", "host", n))
            return Pinned(n)

        self.cuda = types.SimpleNamespace(
            runtime=runtime, memory=memory, Stream=make_stream, Event=lambda: Event(self.trace),
            get_current_stream=self.current, alloc_pinned_memory=alloc_pinned_memory,
            compiler=types.SimpleNamespace(CompileException=type("CompileException", (Exception,), {})))
        pool = types.SimpleNamespace(free_bytes=lambda: 0, free_all_blocks=lambda: None)
        self.get_default_memory_pool = lambda: pool
        sparse = types.ModuleType("cupyx.scipy.sparse")
        sparse.csr_matrix = lambda arrays, shape: CSRMatrix(self, arrays, shape)
        self.cupyx = types.ModuleType("cupyx")
        self.cupyx.scipy = types.ModuleType("cupyx.scipy")
        self.cupyx.scipy.sparse = sparse
        self.cupyx.scipy.ndimage = NdImage(self)

    # ---- what tests and DeviceArray use ----

    def current(self) -> Stream:
        stack = _stack()
        return stack[-1] if stack else self.null

    def launch(self, what: str) -> None:
        self.trace.add(Op("launch", self.current().name, what=what))

    def h2d(self, host: np.ndarray, what: str) -> None:
        self.trace.add(Op("h2d", self.current().name, host.nbytes, what, host.dtype, host.shape))

    def refuse_host(self, obj: Any, what: str) -> None:
        host = _host_arrays(obj)
        if host:
            raise TypeError(f"{what}: unsupported type numpy.ndarray (shape {host[0].shape}) with device arrays")

    def upload_index(self, key: Any) -> None:
        for a in _host_arrays(key if isinstance(key, tuple) else (key,)):
            self.h2d(a, "index")

    # ---- the cupy namespace ----

    def asarray(self, a: Any, dtype: Any = None, order: Any = None) -> Any:
        if isinstance(a, DeviceArray):
            return a if dtype is None or a.dtype == dtype else a.astype(dtype)
        host = np.asarray(a, dtype=dtype, order=order)  # CuPy converts on the host, then copies
        self.h2d(host, "asarray")
        return np.array(host).view(self.ndarray)

    def array(self, a: Any, dtype: Any = None, copy: bool = True, order: Any = None) -> Any:
        if isinstance(a, DeviceArray):
            return a.astype(dtype or a.dtype, copy=True)
        return self.asarray(a, dtype, order)

    def __getattr__(self, name: str) -> Any:
        target = getattr(np, name)
        if name in self._CREATE:
            def create(*args: Any, **kwargs: Any) -> Any:
                out = target(*_plain(args), **_plain(kwargs))
                if not out.dtype.isnative:  # as CuPy refuses
                    raise ValueError("CuPy does not support the big-endian byte-order")
                return out.view(self.ndarray)

            return create
        if isinstance(target, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or (
                callable(target) and type(target).__name__ == "_ArrayFunctionDispatcher"):
            def device_function(*args: Any, **kwargs: Any) -> Any:
                self.refuse_host((args, kwargs), name)
                self.launch(name)
                return _wrap(target(*_plain(args), **_plain(kwargs)))

            return device_function
        return target


@contextlib.contextmanager
def installed(monkeypatch: Any, fake: FakeCupy):
    """``fake`` as cupy and cupyx for gpuproc: imports, the backend's device check, kernels."""
    from gpuproc import backend

    for name, module in (("cupy", fake), ("cupy.cuda", fake.cuda), ("cupy.cuda.memory", fake.cuda.memory),
                         ("cupyx", fake.cupyx), ("cupyx.scipy", fake.cupyx.scipy),
                         ("cupyx.scipy.sparse", fake.cupyx.scipy.sparse),
                         ("cupyx.scipy.ndimage", fake.cupyx.scipy.ndimage)):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(backend, "_cupy_status", lambda: (fake, ""))
    yield fake


class CPUKernel:
    """gp_fit_kernel as the CPU library computes it, called with the kernel's own argument list
    (gpu.kernel_args), logged as a launch on the current stream."""

    def __init__(self, fake: FakeCupy, model: Any, estimator: str, hook: Any = None) -> None:
        self.fake, self.model, self.estimator, self.hook = fake, model, estimator, hook

    def __call__(self, grid: Any, block: Any, args: tuple) -> None:
        self.fake.launch("gp_fit_kernel")
        if self.hook is not None:
            self.hook()
        for a in args:
            assert a is None or isinstance(a, (np.generic, self.fake.ndarray)), type(a)
            assert not isinstance(a, np.ndarray) or a.flags.c_contiguous
        value = lambda a: None if a is None else a.ctypes.data if isinstance(a, np.ndarray) else a.item()  # noqa: E731
        rc = cpu.library().gp_fit_cpu(self.model.kernel_id, ESTIMATORS[self.estimator], 0,
                                      *(value(a) for a in args))
        assert rc == 0


def cpu_kernels(fake: FakeCupy, models: Any, hook: Any = None) -> Any:
    """cuda_kernel(source, name) for ``models`` (names or Model instances): CPUKernel by name expression."""
    estimators = {t: e for e, t in ESTIMATOR_TYPES.items()}
    by_type = {m.kernel_type: m for m in map(get_model, models)}

    def cuda_kernel(source: str, name: str) -> CPUKernel:
        kernel_type, est_type = re.fullmatch(r"gp_fit_kernel<(\w+), (\w+)>", name).groups()
        assert gpu.kernel_name(by_type[kernel_type], estimators[est_type]) == name
        return CPUKernel(fake, by_type[kernel_type], estimators[est_type], hook)

    return cuda_kernel
