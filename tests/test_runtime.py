import os
import platform
from pathlib import Path

import pytest
import torch

from pixelforge.errors import PixelforgeError
from pixelforge.runtime import Runtime, available_memory, cpu_supports_bf16, leave_process_group


def test_auto_on_cpu():
    rt = Runtime.create("cpu")
    assert rt.device.type == "cpu"
    assert rt.precision == ("bf16" if cpu_supports_bf16() else "fp32")
    assert rt.channels_last == (rt.precision != "fp32")  # fp32 convs are faster in NCHW on the CPU
    m = Runtime.create("cpu", "bf16").module(torch.nn.Conv2d(3, 4, 3))
    assert m.weight.is_contiguous(memory_format=torch.channels_last)


def test_autocast_dtype():
    rt = Runtime.create("cpu", "bf16")
    with rt.autocast():
        y = torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3))
    assert y.dtype == torch.bfloat16
    with Runtime.create("cpu", "fp32").autocast():
        assert torch.nn.functional.linear(torch.randn(2, 3), torch.randn(4, 3)).dtype == torch.float32


def test_seed_reproducible():
    Runtime.create("cpu", seed=5)
    a = torch.randn(3)
    Runtime.create("cpu", seed=5)
    assert torch.equal(a, torch.randn(3))


@pytest.mark.parametrize("kw,msg", [
    (dict(device="tpu9"), "unknown device"),
    (dict(precision="fp8"), "unknown precision"),
    (dict(device="cpu", precision="fp16"), "fp16"),
])
def test_bad_runtime(kw, msg):
    with pytest.raises(PixelforgeError, match=msg):
        Runtime.create(**kw)


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
def test_cuda_missing():
    with pytest.raises(PixelforgeError, match="no CUDA"):
        Runtime.create("cuda")


def test_joining_a_process_group_leaves_it_at_exit(monkeypatch):
    """gloo's threads abort a process that exits with its group still up, so the runtime
    registers leave_process_group when it joins one; the call takes a group down and is a
    no-op without one."""
    import atexit
    import socket

    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": "0", "WORLD_SIZE": "2",
                       "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(key, value)
    registered = []
    monkeypatch.setattr(atexit, "register", registered.append)
    real_init = dist.init_process_group  # a group of one: the runtime is told of two ranks, joins alone
    monkeypatch.setattr(dist, "init_process_group", lambda backend: real_init(backend, rank=0, world_size=1))
    rt = Runtime.create("cpu", "fp32")
    assert rt.distributed and dist.is_initialized() and registered == [leave_process_group]
    assert leave_process_group() is True
    assert not dist.is_initialized()
    assert leave_process_group() is False


def test_cpu_runtime_keeps_freed_memory_unless_told_not_to():
    """malloc's thresholds are raised in a CPU runtime's process; PIXELFORGE_KEEP_FREED_MEMORY=0 leaves
    them (fresh processes: the setting is per process)."""
    import subprocess
    import sys

    program = ("from pixelforge.runtime import Runtime, keep_freed_memory\n"
               "Runtime.create('cpu', 'fp32')\nprint(keep_freed_memory())\n")
    for flag, expected in (("1", "True"), ("0", "False")):
        env = {**os.environ, "PIXELFORGE_KEEP_FREED_MEMORY": flag}
        done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
        assert done.stdout.split()[-1] == (expected if platform.libc_ver()[0] == "glibc" else "False")


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="the host's free memory is read from /proc/meminfo")
def test_available_memory_is_the_hosts_memavailable():
    line = next(row for row in Path("/proc/meminfo").read_text().splitlines() if row.startswith("MemAvailable:"))
    expected = int(line.split()[1]) * 1024
    assert abs(available_memory("cpu") - expected) < 0.1 * expected  # read a moment apart
