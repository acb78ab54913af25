"""Mixed precision for training and benchmarks: `trainer.precision` is 32 (float32), bf16 or 16 (float16).

bf16 and 16 run the forward pass under `torch.autocast` (weights stay float32); 16 also scales the loss with a
GradScaler, since float16 gradients underflow. bf16 works on CPUs and recent GPUs; 16 is for CUDA.

Inference (`sentibert predict`, `serve`) also takes `auto`: bf16 where the hardware computes in it natively, else 32.
On SST dev the bundled model's bf16 labels match float32's on 99.8% of phrase nodes (experiments/bench/README.md).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def check(precision: str) -> str:
    if str(precision) not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision!r}: choose from {', '.join(PRECISIONS)}")
    return str(precision)


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls are native here, hence faster than float32: a CUDA GPU with bf16, or a CPU with
    AVX512-BF16 or AMX (without them CPU bf16 is emulated, and slower)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # torch's own probes, private, hence getattr: a torch without them gets float32
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return device.type == "cpu" and any(probe is not None and probe() for probe in probes)


def resolve(precision: str, device: torch.device) -> str:
    """`auto` -> bf16 where `native_bf16`, else 32; any other value checked and kept."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "32"
    return check(precision)


def autocast(precision: str, device: torch.device):
    """A fresh context for one forward pass in `precision` (a no-op for 32)."""
    dtype = PRECISIONS[check(precision)]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 (a pass-through otherwise: scale() returns the loss, step() steps)."""
    return torch.amp.GradScaler(device.type, enabled=check(precision) == "16")
