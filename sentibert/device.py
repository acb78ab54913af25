"""The device a command runs on, checked before anything loads."""
from __future__ import annotations

import os
import platform

import torch


class DeviceError(ValueError):
    """A device that is not one, or not here; the message names the setting and the fix."""


def pick_device(name: str, option: str = "trainer.device") -> torch.device:
    """The device `name` names, checked before anything loads: `auto` is cuda when there is one, else cpu; cuda
    (cuda:N) that this machine lacks is a DeviceError naming `option`, a config key or a flag such as --device."""
    flag = option.startswith("-")
    setting = f"{option} {name}" if flag else f"{option}={name}"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"{setting}: not a device; use cpu, cuda or cuda:N{'' if flag else ', or auto'}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fix = f"{option} cpu" if flag else "cpu or auto"
            raise DeviceError(f"{setting}: no CUDA device is available; use {fix}")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"{setting}: there is no such CUDA device, only cuda:0 to "
                              f"cuda:{torch.cuda.device_count() - 1}")
    return device


def describe_machine(device: torch.device | None = None) -> str:
    """What a timing ran on, for printing beside it: the GPU's name, or the CPU's model, its native bf16 (AVX512-BF16,
    AMX), its cores and torch's threads."""
    if device is not None and device.type == "cuda":
        return describe_hardware(device)
    return f"{describe_hardware(device)}, {torch.get_num_threads()} torch threads"


def describe_hardware(device: torch.device | None = None) -> str:
    """describe_machine less torch's threads, for a record that keeps the threads apart (another process's): the
    GPU's name, or the CPU's model, its native bf16 and its cores."""
    if device is not None and device.type == "cuda":
        return torch.cuda.get_device_name(device)

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:  # not Linux: the platform's words
        pass
    bf16 = " and ".join(name for flag, name in (("avx512_bf16", "AVX512-BF16"), ("amx_bf16", "AMX")) if flag in flags)
    native = f" (native bf16: {bf16})" if bf16 else ""
    return f"{model}{native}, {os.cpu_count()} cores"
