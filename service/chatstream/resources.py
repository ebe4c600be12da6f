"""CPU and GPU memory figures for ``GET /get_resource_usage``."""

from __future__ import annotations

from typing import Any

import psutil


def resource_usage() -> dict[str, Any]:
    memory = psutil.virtual_memory()
    process = psutil.Process()
    usage: dict[str, Any] = {
        "cpu": {
            "percent": psutil.cpu_percent(interval=None),
            "count": psutil.cpu_count(),
        },
        "memory": {
            "total_bytes": memory.total,
            "available_bytes": memory.available,
            "used_percent": memory.percent,
            "process_rss_bytes": process.memory_info().rss,
        },
        "gpus": [],
    }
    try:
        import torch

        if torch.cuda.is_available():
            for index in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(index)
                usage["gpus"].append(
                    {
                        "index": index,
                        "name": torch.cuda.get_device_name(index),
                        "total_bytes": total,
                        "free_bytes": free,
                        "allocated_bytes": torch.cuda.memory_allocated(index),
                        "reserved_bytes": torch.cuda.memory_reserved(index),
                    }
                )
    except Exception:  # no torch or no driver: CPU figures only
        pass
    return usage
