"""Which pixel values are invalid in a frame: pyFAI's dummy rule, as value intervals per dtype.

pyFAI's ``integrate2d`` (``preproc`` in its sparse and histogram engines) converts each frame
to float32 and drops a pixel from that frame's signal *and* normalisation when

- its float32 value is not finite, or
- ``dummy`` is set and ``|value - dummy| <= delta_dummy`` (float32 arithmetic), or
  ``value == dummy`` when ``delta_dummy`` is None or 0, or
- a flat field is given and the flat value of the pixel meets the same dummy test.

Without an explicit ``dummy`` it takes the detector's own (``Detector.get_dummies``): the
detector's dummy cast through the frame's dtype, then to float32 (Pilatus/Eiger: dummy -2,
delta_dummy 1.5, so -1 gaps and -2 bad pixels of signed frames drop out; for uint32 frames -2
becomes 2**32 - 2, i.e. every value that rounds to 2**32 in float32), with ``delta_dummy``
float32 eps when the detector has none. A detector without a dummy tests nothing.

:func:`invalid_intervals` turns that rule into closed intervals of raw values in the frame's own
type (integers for integer frames, float32 values for float frames), which the compiled CPU
kernels and NumPy/CuPy test without converting each pixel. gpuproc adds two rules of its own:
the dtype's maximum of unsigned frames (2**16 - 1, 2**32 - 1: the Dectris dummy of HDF5 frames)
and, when set, a saturation threshold (values above it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_F32 = np.float32


@dataclass(frozen=True)
class DummyRule:
    """pyFAI's dummy test as integrate2d applies it: ``|v - dummy| <= delta`` in float32.

    Attributes
    ----------
    dummy, delta : numpy.float32
        Dummy value and tolerance (counts); ``delta == 0`` means exact equality.
    """

    dummy: np.float32
    delta: np.float32

    def hits(self, value: Any) -> Any:
        """True where float32 values meet the rule (NumPy or CuPy arrays, or scalars)."""
        value = value.astype(_F32, copy=False) if hasattr(value, "astype") else _F32(value)
        if self.delta == 0:
            return value == self.dummy
        return abs(value - self.dummy) <= self.delta

    def float32_interval(self) -> tuple[np.float32, np.float32]:
        """Closed interval [lo, hi] of the float32 values that meet the rule."""
        if self.delta == 0:
            return self.dummy, self.dummy
        return self._edge(_F32(float(self.dummy) - float(self.delta)), -1), self._edge(
            _F32(float(self.dummy) + float(self.delta)), +1)

    def _edge(self, start: np.float32, direction: int) -> np.float32:
        """The float32 farthest from ``dummy`` in ``direction`` that meets the rule; ``start``
        (the real bound rounded to float32) lies within an ulp or two of it."""
        away = _F32(direction * np.inf)
        x = start
        while not self.hits(x):
            x = np.nextafter(x, self.dummy, dtype=_F32)
        while self.hits(step := np.nextafter(x, away, dtype=_F32)) and np.isfinite(step):
            x = step
        return x


def dummy_rule(detector: Any, dtype: np.dtype, dummy: float | str | None = "auto",
               delta_dummy: float | None = None) -> DummyRule | None:
    """The dummy test integrate2d applies to frames of ``dtype``.

    Parameters
    ----------
    detector
        pyFAI detector (its ``dummy``, ``delta_dummy`` are used with ``dummy="auto"``).
    dtype
        The frames' dtype (the detector's dummy is cast through it, as pyFAI does).
    dummy
        ``"auto"``: the detector's (``integrate2d(dummy=None)``); a number: that value, with
        ``delta_dummy`` (None: exact equality), as ``integrate2d(dummy=..., delta_dummy=...)``;
        None: no dummy test.
    delta_dummy
        Tolerance for a numeric ``dummy``; with ``"auto"`` it must be None (pyFAI then takes the
        detector's tolerance too).

    Returns
    -------
    DummyRule or None (no dummy test).
    """
    if dummy is None:
        return None
    if isinstance(dummy, str):
        if dummy != "auto":
            raise ValueError(f"dummy must be 'auto', a number or None, got {dummy!r}")
        if delta_dummy is not None:
            raise ValueError("delta_dummy needs a numeric dummy (with dummy 'auto' the detector's "
                             "delta_dummy is used, as in pyFAI)")
        value, delta = detector.get_dummies(np.dtype(dtype))
        return None if value is None else DummyRule(_F32(value), _F32(delta))
    return DummyRule(_F32(dummy), _F32(0.0 if delta_dummy is None else delta_dummy))


def invalid_intervals(dtype: np.dtype, rule: DummyRule | None) -> list[tuple[Any, Any]]:
    """Closed intervals of raw values of ``dtype`` that are invalid in every frame.

    Integer frames get integer bounds within the dtype's range (the values whose float32
    conversion meets ``rule``, plus the maximum of unsigned dtypes); float frames get float32
    bounds, to be compared with the float32 conversion of the values (as pyFAI compares).
    Empty intervals are left out.
    """
    dtype = np.dtype(dtype)
    out: list[tuple[Any, Any]] = []
    if rule is not None:
        lo, hi = rule.float32_interval()
        if dtype.kind == "f":
            out.append((lo, hi))
        elif dtype.kind in "iu":
            bounds = _integer_interval(dtype, lo, hi)
            if bounds is not None:
                out.append(bounds)
    if dtype.kind == "u":
        top = int(np.iinfo(dtype).max)
        if not any(a <= top <= b for a, b in out):
            out.append((top, top))
    return out


def _integer_interval(dtype: np.dtype, lo: np.float32, hi: np.float32) -> tuple[int, int] | None:
    """[a, b]: the integers of ``dtype`` whose float32 conversion lies in [lo, hi], or None."""
    info = np.iinfo(dtype)
    as32 = lambda v: np.array(v, dtype).astype(_F32)[()]  # noqa: E731 - exact dtype -> float32

    def first(pred: Any) -> int:
        """Smallest integer of the dtype where the monotone predicate holds (info.max + 1: none)."""
        a, b = int(info.min), int(info.max) + 1
        while a < b:
            m = (a + b) // 2
            if pred(m):
                b = m
            else:
                a = m + 1
        return a

    start = first(lambda v: as32(v) >= lo)
    stop = first(lambda v: as32(v) > hi) - 1
    return (start, stop) if start <= stop else None
