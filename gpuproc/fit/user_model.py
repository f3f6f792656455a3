"""User models: a value function in a C++ header, derivatives from dual numbers, compiled at run time.

A user writes one function template of the scalar type ``T`` in a header of their own::

    template <class T>
    GP_HD T gauss_linear(const float* x, const T* p) {   // value at one point
        const T d = (x[0] - p[1]) / p[2];
        return p[0] * exp(-0.5f * d * d) + p[3] + p[4] * x[0];
    }

(math functions called unqualified: ``exp``, not ``std::exp``; see kernels/dual.cuh for the list)
and registers it in Python with :class:`UserModel` (parameter names, coordinates, which parameters
are positions, a starting-value rule and bounds). gpuproc generates the model type around it
(kernels/user_model.cuh: the Jacobian from one pass with ``Dual<NP>``) and compiles it when first
used: with the system C++ compiler for the CPU path (:mod:`gpuproc.fit.compile_cpu`) and with NVRTC
on the GPU (through :func:`gpuproc.backend.cuda_kernel`, as the built-ins), both cached by the hash
of the header, the registration and gpuproc's kernel headers. The model then runs through the same
LM driver, estimators, statuses and batching as the built-ins: ``gpuproc.fit.fit(model, ...)``.

Job files name a registered model by ``"path/to/models.py:NAME"`` (:func:`resolve_model`).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.util
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from gpuproc.backend import kernel_dir, to_numpy
from gpuproc.fit.compile_cpu import build_library, cache_dir
from gpuproc.fit.models.base import Model

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_PARAMS = 32  # fixed parameters travel as one 32-bit mask
MAX_DIMS = 2  # coordinate axes the CPU accumulator reads (kernels/fit_cpu.cpp)

#: the starting-value rule: (x, y, w, xp) -> (n_fits, n_params), arguments as Model.guess takes them
GuessRule = Callable[[Any, Any, Any, ModuleType], Any]
#: bounds: {parameter: (lower, upper)} (None = unbounded), or (x, xp) -> (lower, upper) arrays
BoundsRule = Mapping[str, tuple[float | None, float | None]] | Callable[[Any, ModuleType], tuple[Any, Any]]


class UserModel(Model):
    """A fit model from a user's templated C++ value function.

    Parameters
    ----------
    name : str
        Model name (in results and messages).
    header : str or Path
        The C++ header with the value function (self-contained; it may use ``GP_HD`` and the
        functions of kernels/dual.cuh, which are included before it).
    function : str
        Name of the function template ``template <class T> GP_HD T f(const float* x, const T* p)``.
    params : sequence of str
        Parameter names, in the order of ``p`` (at most 32).
    coordinates : sequence of str
        Names of the coordinate axes, in the order of ``x`` (e.g. ``("q", "phi")``; one or two).
    positions : mapping
        Parameters that place a feature in the data window: ``{"center": "x"}`` or, for a periodic
        coordinate, ``{"phi0": ("phi", 360.0)}`` (period in the coordinate's unit). A fit whose
        position leaves the window's data range is ``OUT_OF_BOUNDS``, as for the built-ins.
        At least one.
    guess : callable, optional
        Starting values ``guess(x, y, w, xp) -> (n_fits, n_params)`` with coordinates
        ``(n_dims, n_points)`` or ``(n_fits, n_dims, n_points)``, data and weights
        ``(n_fits, n_points)`` and ``xp`` the array module (NumPy or CuPy). Without one, every fit
        needs ``p0``.
    bounds : mapping or callable, optional
        ``{"sigma": (1e-6, None), ...}`` (None or a missing name: unbounded), or
        ``bounds(x, xp) -> (lower, upper)`` arrays of shape ``(n_params,)``.
    """

    def __init__(self, name: str, header: str | Path, function: str, params: Sequence[str],
                 coordinates: Sequence[str], positions: Mapping[str, str | tuple[str, float]],
                 guess: GuessRule | None = None, bounds: BoundsRule | None = None):
        self.name = name
        self.header = Path(header).resolve()
        self.function = function
        self.param_names = tuple(params)
        self.coordinates = tuple(coordinates)
        self.n_dims = len(self.coordinates)
        self._guess = guess
        self._bounds = bounds
        self.positions = self._check(positions)
        self.kernel_id = 0  # the only model of its own CPU library
        self.origin: str | None = None  # "path/models.py:NAME" when loaded by resolve_model
        digest = hashlib.sha256(f"{self.header.read_text()}\0{self._definition('T')}".encode()).hexdigest()
        self.kernel_type = f"GpUser_{digest[:16]}"

    def _check(self, positions: Mapping[str, str | tuple[str, float]]) -> tuple[tuple[int, int, float], ...]:
        """Validate the registration; returns (parameter, coordinate, period) per position."""
        where = f"user model {self.name!r}"
        if not self.header.is_file():
            raise FileNotFoundError(f"{where}: header {self.header} does not exist")
        for label, names in (("function", [self.function]), ("params", self.param_names),
                             ("coordinates", self.coordinates)):
            bad = [n for n in names if not isinstance(n, str) or not _IDENT.match(n)]
            if bad or not names or len(set(names)) != len(names):
                raise ValueError(f"{where}: {label} must be distinct identifiers, got {list(names)}")
        if self.n_dims > MAX_DIMS:
            raise ValueError(f"{where}: at most {MAX_DIMS} coordinates (the CPU accumulator reads two axes), "
                             f"got {self.coordinates}")
        if len(self.param_names) > MAX_PARAMS:
            raise ValueError(f"{where}: at most {MAX_PARAMS} parameters, got {len(self.param_names)}")
        if not positions:
            raise ValueError(f"{where}: positions must name at least one parameter (e.g. {{'center': 'x'}})")
        out = []
        for param, spec in positions.items():
            coord, period = (spec, 0.0) if isinstance(spec, str) else tuple(spec)
            if param not in self.param_names:
                raise ValueError(f"{where}: position {param!r} is not a parameter {self.param_names}")
            if coord not in self.coordinates:
                raise ValueError(f"{where}: position {param!r}: coordinate {coord!r} is not one of {self.coordinates}")
            if not (math.isfinite(period) and period >= 0):
                raise ValueError(f"{where}: position {param!r}: period must be >= 0 (0 = not periodic), got {period}")
            out.append((self.param_names.index(param), self.coordinates.index(coord), float(period)))
        if isinstance(self._bounds, Mapping):
            unknown = set(self._bounds) - set(self.param_names)
            if unknown:
                raise ValueError(f"{where}: bounds for unknown parameters {sorted(unknown)}")
        return tuple(out)

    # --- the generated C++ ---------------------------------------------------------------------

    def _definition(self, type_name: str) -> str:
        """The model type around the user's function: value via the function, positions."""
        cases = "".join(f"            case {k}: param = {p}; dim = {d}; period = {period!r}f; return;\n"
                        for k, (p, d, period) in enumerate(self.positions[:-1]))
        p, d, period = self.positions[-1]
        return (
            f"struct {type_name} : UserModel<{type_name}, {self.n_params}, {self.n_dims}, {len(self.positions)}> {{\n"
            f"    template <class T>\n"
            f"    GP_HD static T value(const float* x, const T* p) {{ return {self.function}(x, p); }}\n"
            f"    GP_HD static void position(int k, int& param, int& dim, float& period) {{\n"
            f"        switch (k) {{\n{cases}"
            f"            default: param = {p}; dim = {d}; period = {period!r}f; return;\n"
            f"        }}\n    }}\n}};\n"
        )

    def _source(self, tail: str) -> str:
        """Generated translation unit: the adapter, the user's header (errors name its lines), the
        model type, then ``tail`` (the kernel source that instantiates it)."""
        return (
            f"// gpuproc user model {self.name!r} from {self.header} (generated)\n"
            f"// gpuproc kernel sources {kernel_digest()[:20]} (the cache keys cover what this includes)\n"
            f'#include "user_model.cuh"\n'
            f'#line 1 "{self.header}"\n{self.header.read_text()}\n'
            f'#line 1 "{self.name}: generated model type"\n'
            f"{self._definition(self.kernel_type)}{tail}"
        )

    def cpu_library(self) -> str:
        """Path of this model's CPU library, built on first use (cached). Raises CompileError."""
        return str(_cpu_library(self._source(f"#define GP_USER_TYPE {self.kernel_type}\n"
                                             '#include "user_model_cpu.cpp"\n'),
                                self.name, str(self.header)))

    @property
    def kernel_source(self) -> str:
        """Path of the generated CUDA source (user model + fit.cu) that the GPU path compiles."""
        src = self._source('#include "fit.cu"\n')
        path = cache_dir() / f"{_stem(self.name)}-{hashlib.sha256(src.encode()).hexdigest()[:20]}.cu"
        if not path.is_file():
            path.write_text(src)
        return str(path)

    def compile(self) -> UserModel:
        """Build the CPU library now (a header error surfaces here rather than in a fit)."""
        self.cpu_library()
        return self

    def __reduce_ex__(self, protocol: int) -> Any:
        """A model loaded from a registration file pickles as that reference (a Dask or SLURM
        worker imports the file itself; its starting-value rule may be a lambda)."""
        if self.origin is not None:
            return resolve_model, (self.origin,)
        return super().__reduce_ex__(protocol)

    # --- Model interface -----------------------------------------------------------------------

    def _eval(self, x: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
        """Value and Jacobian from the compiled model (float32 arithmetic, float64 results)."""
        lib = _cpu_functions(self.cpu_library())
        xh = np.ascontiguousarray(to_numpy(x), dtype=np.float32)
        ph = np.ascontiguousarray(to_numpy(p), dtype=np.float32)
        n_fits, n_points = ph.shape[0], xh.shape[-1]
        if xh.shape[-2] != self.n_dims or ph.shape[-1] != self.n_params:
            raise ValueError(f"{self.name}: coordinates {xh.shape} / parameters {ph.shape} do not match "
                             f"{self.n_dims} coordinates and {self.n_params} parameters")
        f = np.empty((n_fits, n_points), dtype=np.float32)
        g = np.empty((n_fits, n_points, self.n_params), dtype=np.float32)
        stride = self.n_dims * n_points if xh.ndim == 3 else 0
        lib.gp_user_eval(n_fits, n_points, xh.ctypes.data, stride, ph.ctypes.data, f.ctypes.data, g.ctypes.data)
        return f.astype(np.float64), g.astype(np.float64)

    def evaluate(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        return xp.asarray(self._eval(x, p)[0])

    def jacobian(self, x: Any, p: Any, xp: ModuleType = np) -> Any:
        return xp.asarray(self._eval(x, p)[1])

    def guess(self, x: Any, y: Any, w: Any, xp: ModuleType = np) -> Any:
        if self._guess is None:
            raise ValueError(f"user model {self.name!r} has no starting-value rule (guess=): pass p0 to fit")
        p = xp.asarray(self._guess(x, y, w, xp), dtype=np.float32)
        if p.shape != (y.shape[0], self.n_params):
            raise ValueError(f"user model {self.name!r}: guess returned shape {p.shape}, expected "
                             f"{(y.shape[0], self.n_params)} (n_fits, n_params)")
        return p

    def default_bounds(self, x: Any, xp: ModuleType = np) -> tuple[np.ndarray, np.ndarray]:
        if callable(self._bounds):
            lo, hi = self._bounds(x, xp)
            return (np.broadcast_to(np.asarray(to_numpy(lo), dtype=np.float64), (self.n_params,)).copy(),
                    np.broadcast_to(np.asarray(to_numpy(hi), dtype=np.float64), (self.n_params,)).copy())
        lo = np.full(self.n_params, -np.inf)
        hi = np.full(self.n_params, np.inf)
        for name, (low, high) in (self._bounds or {}).items():
            i = self.param_names.index(name)
            lo[i] = -np.inf if low is None else low
            hi[i] = np.inf if high is None else high
        return lo, hi


def _stem(name: str) -> str:
    return "user_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


@functools.lru_cache(maxsize=1)
def kernel_digest() -> str:
    """Hash of gpuproc's kernel sources (a generated source's cache key covers what it includes)."""
    h = hashlib.sha256()
    kdir = kernel_dir()
    for path in sorted(p for p in kdir.rglob("*") if p.suffix in (".cuh", ".cu", ".cpp")):
        h.update(path.relative_to(kdir).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=None)
def _cpu_library(source: str, name: str, header: str) -> Path:
    return build_library(source, _stem(name), [kernel_dir()], what=f"user model {name!r} ({header})", prefer_file=header)


@functools.lru_cache(maxsize=None)
def _cpu_functions(path: str) -> ctypes.CDLL:
    """The library's own entry points (gp_user_eval; the fit entry is loaded by gpuproc.fit.cpu)."""
    lib = ctypes.CDLL(path)
    lib.gp_user_eval.restype = None
    lib.gp_user_eval.argtypes = [ctypes.c_longlong, ctypes.c_int, ctypes.c_void_p, ctypes.c_longlong,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    return lib


def resolve_model(spec: str | Model, base_dir: str | Path | None = None, **options: Any) -> Model:
    """A model from a job file's ``model`` value: a built-in name (``"gauss2d_polar"``, with
    ``options``) or a registered user model ``"path/to/models.py:NAME"`` (path relative to
    ``base_dir``, e.g. the job file's folder), whose module defines ``NAME`` as a Model."""
    from gpuproc.fit.models import get_model

    if not isinstance(spec, str) or ":" not in spec:
        return get_model(spec, **options)
    file, _, attr = spec.rpartition(":")
    path = Path(file)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.suffix != ".py" or not path.is_file():
        raise FileNotFoundError(f"model {spec!r}: {path} is not a Python file (expected 'path/to/models.py:NAME')")
    if options:
        raise ValueError(f"model {spec!r}: a user model takes no model options, got {sorted(options)}")
    module = _load_module(path.resolve())
    model = getattr(module, attr, None)
    if not isinstance(model, Model):
        raise ValueError(f"model {spec!r}: {path} defines no model named {attr!r} "
                         f"(models there: {sorted(k for k, v in vars(module).items() if isinstance(v, Model))})")
    if isinstance(model, UserModel):
        model.origin = f"{path.resolve()}:{attr}"
    return model


@functools.lru_cache(maxsize=None)
def _load_module(path: Path) -> ModuleType:
    """Import a registration file once per process (its models keep their compiled libraries)."""
    spec = importlib.util.spec_from_file_location(f"gpuproc_user_models_{_stem(path.stem)}_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
