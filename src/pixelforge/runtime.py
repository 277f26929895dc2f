"""Where and how tensors are computed: device, precision, memory format, seeding, distribution.

One :class:`Runtime` is built per command from ``--device``/``--precision``/``--seed`` and
handed to models and trainers, so no model file decides these things for itself.

Defaults (``auto``):
- CUDA present: the GPU, fp16 autocast with a gradient scaler (bf16 where the GPU has it).
- CPU: bf16 autocast when oneDNN reports bf16 support (AVX512-BF16 / AMX), else fp32;
  channels_last memory format with bf16, which lets oneDNN pick its fastest kernels
  (in fp32 NCHW is faster on the CPU, so fp32 keeps NCHW); with bf16, strided convolutions with
  small maps train as matrix products (:mod:`pixelforge.nn.gemm_conv`).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .errors import PixelforgeError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_supports_bf16() -> bool:
    """True when oneDNN can run bf16 convolutions/matmuls natively on this CPU."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


# glibc's malloc hands blocks above its mmap threshold (which it raises to at most 32 MB by itself)
# back to the system when they are freed, so a large tensor allocated again, image after image or
# step after step (one 32-channel 512x512 fp32 map is 32 MB), arrives as fresh pages that fault on
# first touch: about 8 ms for such a map on the project's CPU, against 0.7 ms when the block is
# reused. With both thresholds at 1 GiB freed blocks stay in the heap for the next tensor; the
# process keeps its peak memory instead of returning it (benchmarks/profiling.py --probes).
KEEP_FREED_BYTES = 1 << 30
KEEP_FREED_ENV = "PIXELFORGE_KEEP_FREED_MEMORY"  # "0": leave malloc as it is
_freed_memory_kept: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds to :data:`KEEP_FREED_BYTES` (once per process); True
    when they are set. Other C libraries, or ``PIXELFORGE_KEEP_FREED_MEMORY=0``, leave malloc alone."""
    global _freed_memory_kept
    if _freed_memory_kept is None:
        _freed_memory_kept = False
        if os.environ.get(KEEP_FREED_ENV, "1") != "0" and os.name == "posix":
            import ctypes
            import ctypes.util

            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
            _freed_memory_kept = bool(mallopt(m_mmap_threshold, KEEP_FREED_BYTES)
                                      and mallopt(m_trim_threshold, KEEP_FREED_BYTES))
    return _freed_memory_kept


def available_memory(device: torch.device | str = "cpu") -> int | None:
    """Bytes a new allocation can still get: a CUDA device's free memory, or the host's MemAvailable
    (Linux); None where the platform does not say."""
    device = resolve_device(str(device))
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def make_optimizer(cls: type[torch.optim.Optimizer], params, **options) -> torch.optim.Optimizer:
    """``cls(params, **options)`` with torch's fused kernel where it has one for these tensors.

    The fused Adam/AdamW/SGD update all parameters in one pass instead of a chain of
    element-wise operations per tensor: on the CPU the GAN's optimizer steps take about an
    eighth of the time (benchmarks/profiling.py). Other optimizers, devices or torch versions
    without the kernel get the default implementation."""
    params = list(params)
    if cls in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD) and "fused" not in options:
        try:
            return cls(params, **options, fused=True)
        except (RuntimeError, TypeError, ValueError):
            pass
    return cls(params, **options)


@dataclass
class Runtime:
    device: torch.device
    precision: str  # "fp32" | "bf16" | "fp16" (resolved, never "auto")
    channels_last: bool
    seed: int | None = None
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", seed: int | None = None,
               channels_last: bool | None = None) -> "Runtime":
        rank = int(os.environ.get("RANK", 0))
        world_size = int(os.environ.get("WORLD_SIZE", 1))
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        dev = resolve_device(device, local_rank)
        prec = _resolve_precision(precision, dev)
        if channels_last is None:
            # oneDNN's channels_last kernels shine in bf16 but are slower than NCHW in fp32 on the CPU.
            channels_last = dev.type == "cuda" or prec != "fp32"
        rt = cls(dev, prec, channels_last, seed, rank, world_size, local_rank)
        if dev.type == "cpu":
            keep_freed_memory()
        if world_size > 1:
            rt._init_process_group()
        if seed is not None:
            rt.seed_everything(seed)
        return rt

    # -- precision -------------------------------------------------------------------
    @property
    def amp_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self):
        """Context manager for the forward pass (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A scaler that is active only where fp16 needs one (bf16 has fp32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")

    # -- placement -------------------------------------------------------------------
    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        m = m.to(self.device)
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        if self.device.type == "cpu" and self.precision == "bf16":
            from .nn.gemm_conv import use_gemm_convolutions

            use_gemm_convolutions(m)
        return m

    def tensor(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # -- seeding ---------------------------------------------------------------------
    def seed_everything(self, seed: int) -> None:
        """Seed torch, numpy and random; each rank gets its own stream (seed + rank)."""
        s = seed + self.rank
        random.seed(s)
        np.random.seed(s % 2**32)
        torch.manual_seed(s)

    # -- distribution ----------------------------------------------------------------
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def _init_process_group(self) -> None:
        """Join the job torchrun started (env:// rendezvous): NCCL on CUDA, gloo on the CPU."""
        import torch.distributed as dist

        if dist.is_initialized():
            return
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        atexit.register(leave_process_group)

    def wrap(self, module: torch.nn.Module, sync_bn: bool = False) -> torch.nn.Module:
        """``module`` for training: DistributedDataParallel under torchrun, itself otherwise.

        The unwrapped module keeps the weights (save, EMA and sampling use it)."""
        if not self.distributed:
            return module
        if sync_bn:
            if self.device.type != "cuda":
                raise PixelforgeError("SyncBatchNorm needs CUDA; on the CPU use a per-sample norm "
                                      "(e.g. --norm gn) or none")
            module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(module, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def any_true(self, *flags: bool) -> tuple[bool, ...]:
        """Each flag made true on every rank when it is true on any rank (keeps ranks' decisions
        in step); several flags cost one all-reduce."""
        if not self.distributed:
            return tuple(bool(f) for f in flags)
        import torch.distributed as dist

        t = torch.tensor([1.0 if f else 0.0 for f in flags], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return tuple(bool(v) for v in t.tolist())

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def describe(self) -> str:
        cl = ", channels_last" if self.channels_last else ""
        dist = f", rank {self.rank}/{self.world_size}" if self.distributed else ""
        return f"{self.device} {self.precision}{cl}{dist}"


def leave_process_group(wait: bool = False) -> bool:
    """Shut the torchrun process group down, if one is up (registered to run at exit when the
    runtime joins one); true when there was one. ``wait``: first wait for every rank to get
    here (only when all of them are known to be on their way out, or it waits for good).

    At interpreter exit gloo's worker threads can be destroyed while still joinable, which
    aborts the process ("terminate called without an active exception") after all work is
    done; leaving the group explicitly first avoids that. The collection first frees the
    DistributedDataParallel wrappers, whose reference cycles would otherwise keep the group
    alive until the interpreter is torn down."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return False
    if wait:
        dist.barrier()
    gc.collect()
    dist.destroy_process_group()
    return True


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise PixelforgeError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PixelforgeError("--device cuda asked for, but no CUDA GPU is available")
    return dev


def _resolve_precision(precision: str, device: torch.device) -> str:
    if precision not in PRECISIONS:
        raise PixelforgeError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if device.type == "cpu" and cpu_supports_bf16() else "fp32"
    if precision == "fp16" and device.type == "cpu":
        raise PixelforgeError("fp16 autocast is for CUDA; on the CPU use --precision bf16 or fp32")
    return precision
