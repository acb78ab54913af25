"""Mixed precision for training and benchmarks: `trainer.precision` is 32 (float32), bf16 or 16 (float16).

bf16 and 16 run the forward pass under `torch.autocast` (weights stay float32); 16 also scales the loss with a
GradScaler, since float16 gradients underflow. bf16 works on CPUs and recent GPUs; 16 is for CUDA.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

PRECISIONS = {"32": None, "bf16": torch.bfloat16, "16": torch.float16}


def check(precision: str) -> str:
    if str(precision) not in PRECISIONS:
        raise ValueError(f"trainer.precision={precision!r}: choose from {', '.join(PRECISIONS)}")
    return str(precision)


def autocast(precision: str, device: torch.device):
    """A fresh context for one forward pass in `precision` (a no-op for 32)."""
    dtype = PRECISIONS[check(precision)]
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling for float16 (a pass-through otherwise: scale() returns the loss, step() steps)."""
    return torch.amp.GradScaler(device.type, enabled=check(precision) == "16")
