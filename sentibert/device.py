"""The device a command runs on, checked before anything loads."""
from __future__ import annotations

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
