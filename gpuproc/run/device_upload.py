"""Blocks of host arrays to the GPU in their stored dtype, through pinned memory on a copy stream.

A run reads block k+1 in a background thread while block k computes
(:mod:`gpuproc.run.prefetch`). :meth:`Uploader.put`, called by that thread, copies the decoded
block into one of two pinned (page-locked) staging buffers and issues its host-to-device copy
on a dedicated non-blocking CUDA stream, recording an event after it; :meth:`Uploader.take`,
called where the block computes, makes the computing stream wait for that event (on the device:
the host does not block). So the upload of block k+1 runs while the GPU works on block k, and
block k's work starts only once its own copy has landed.

- The bytes sent per frame (spectrum) are the stored ones (uint16, uint32, int32 frames travel as
  such); the conversion happens on the device (:mod:`gpuproc.waxs.integrate` to float32,
  :class:`gpuproc.pl.pipeline.Preprocessor` to float64).
- Pinned memory is bounded: two staging buffers of ``staging_bytes`` each (a block of
  ``[job] batch_frames`` frames, or ``batch_rows`` map rows of spectra), allocated at the first upload. A larger block goes through
  them in turns; a buffer is refilled only after its previous copy has finished (its event).
- A device block is allocated on the copy stream. Its consumer must have finished with it (a
  device-to-host copy of the results, as every pipeline block ends with) before dropping it,
  since CuPy's pool may then give the memory to the next upload on the copy stream.

On the CPU (``xp`` is NumPy) both calls return the host array unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np


@dataclass
class Staged:
    """A block on its way to the device: the device array and the event after its last copy."""

    array: Any  #: the device array (the stored dtype and shape of the host block)
    event: Any  #: CUDA event recorded on the copy stream after the block's last copy


class _Slot:
    """One pinned staging buffer and the event after the last copy out of it."""

    def __init__(self, memory: Any, nbytes: int) -> None:
        self.memory = memory  # keeps the pinned allocation alive
        self.view = np.frombuffer(memory, np.uint8, nbytes)
        self.event: Any = None


class Uploader:
    """Host-to-device copies of blocks through two pinned staging buffers on a copy stream.

    Parameters
    ----------
    xp : module
        The array namespace of the run: ``numpy`` (no copies) or ``cupy``.
    staging_bytes : int
        Bytes of each of the two pinned buffers: frames of a block x bytes per stored frame.
    """

    def __init__(self, xp: ModuleType, staging_bytes: int) -> None:
        self._xp = xp
        self._bytes = max(1, int(staging_bytes))
        self._slots: list[_Slot] = []
        self._next = 0
        self._stream: Any = None
        self._lock = threading.Lock()

    def put(self, host: np.ndarray) -> Any:
        """Start copying ``host`` to the device (returns at once on the GPU, once the last chunk is
        in a staging buffer); a :class:`Staged` block for :meth:`take`, or ``host`` on the CPU."""
        if self._xp is np:
            return host
        host = np.ascontiguousarray(host, dtype=host.dtype.newbyteorder("="))  # CuPy: native byte order only
        with self._lock:
            if self._stream is None:
                cuda = self._xp.cuda
                self._stream = cuda.Stream(non_blocking=True)
                self._slots = [_Slot(cuda.alloc_pinned_memory(self._bytes), self._bytes) for _ in range(2)]
            stream = self._stream
            with stream:
                device = self._xp.empty(host.shape, host.dtype)
            src, dst = host.reshape(-1).view(np.uint8), device.reshape(-1).view(np.uint8)
            event = None
            for start in range(0, src.size, self._bytes):
                stop = min(start + self._bytes, src.size)
                slot = self._slots[self._next]
                self._next = 1 - self._next
                if slot.event is not None:
                    slot.event.synchronize()  # its previous copy has left the buffer
                staged = slot.view[: stop - start]
                np.copyto(staged, src[start:stop])
                dst[start:stop].set(staged, stream=stream)
                event = slot.event = stream.record()
            return Staged(device, event)

    def take(self, block: Any) -> Any:
        """The device array of a block from :meth:`put`; the current stream waits for its copy."""
        if self._xp is np:
            return block
        if block.event is not None:  # None: an empty block, nothing was copied
            self._xp.cuda.get_current_stream().wait_event(block.event)
        return block.array
