"""Where and how the maths runs: device, precision, compilation, processes.

Launched with `torchrun`, each process trains a DDP replica on its share
of every epoch's batches; WORLD_SIZE/LOCAL_RANK tell us so. Rank 0 saves.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .config import AUTO, TrainConfig


def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: there bf16 autocast is about twice as fast as fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # builds without oneDNN
        return False


@dataclass
class Runtime:
    device: torch.device
    bf16: bool
    compile: bool
    pad_multiple: int
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def autocast(self) -> AbstractContextManager:
        # Parameters and optimizer state stay fp32; matmuls run in bf16.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training step calls: DDP replica, then compiled.

        dynamic=True plus lengths rounded to `pad_multiple` keeps the number
        of compiled graphs small instead of one per batch length.
        """
        if self.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = DistributedDataParallel(model, device_ids=ids)
        if self.compile:
            model = torch.compile(model, dynamic=True)
        return model

    def synchronize(self) -> None:
        """Wait for queued GPU work, so wall-clock timings mean something."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def any_rank(self, flag: bool) -> bool:
        """True if `flag` is set on any process (a collective: every rank must call it)."""
        if self.world_size == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def sum_over_ranks(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()


def setup_runtime(config: TrainConfig) -> Runtime:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want_cuda = config.device == "cuda" or (config.device == AUTO and torch.cuda.is_available())
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was asked for, but torch sees no CUDA device")
    if want_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        # TF32 matmuls for whatever still runs in fp32 outside autocast.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if want_cuda else "gloo")

    if config.bf16 == AUTO:
        bf16 = torch.cuda.is_bf16_supported() if want_cuda else cpu_has_native_bf16()
    else:
        bf16 = bool(config.bf16)
    compile_ = want_cuda if config.compile == AUTO else bool(config.compile)
    if config.pad_to_multiple_of == AUTO:
        pad_multiple = 64 if compile_ else 8
    else:
        pad_multiple = config.pad_to_multiple_of
    return Runtime(device, bf16, compile_, pad_multiple, rank, world_size)
