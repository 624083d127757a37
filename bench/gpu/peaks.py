"""Dense bf16 tensor-core peaks (TFLOP/s, without 2:4 sparsity: half the datasheets' headline "with sparsity"
figure), matched against torch.cuda.get_device_name in order (the first name contained wins, so the NVL and
PCIe variants come before their family). Model FLOP utilisation divides by these."""

from __future__ import annotations

# (name part, dense bf16 TFLOP/s, source)
PEAKS: tuple[tuple[str, float, str], ...] = (
    ("H200 NVL", 835.5, "https://www.nvidia.com/en-us/data-center/h200/ (BF16 1,671 TFLOPS with sparsity)"),
    ("H100 NVL", 835.5, "https://www.nvidia.com/en-us/data-center/h100/ (H100 NVL: BF16 1,671 TFLOPS with sparsity)"),
    ("H100 PCIe", 756.5, "https://www.nvidia.com/en-us/data-center/h100/ (H100 PCIe: BF16 1,513 TFLOPS with sparsity)"),
    ("GH200", 989.5, "https://www.nvidia.com/en-us/data-center/grace-hopper-superchip/ (BF16 1,979 TFLOPS with sparsity)"),
    ("H200", 989.5, "https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM: BF16 1,979 TFLOPS with sparsity)"),
    ("H100", 989.5, "https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM: BF16 1,979 TFLOPS with sparsity)"),
    ("A100", 312.0, "https://www.nvidia.com/en-us/data-center/a100/ (BF16 312 TFLOPS dense)"),
    ("L40S", 362.05, "https://www.nvidia.com/en-us/data-center/l40s/ (BF16 733 TFLOPS with sparsity)"),
    ("B200", 2250.0, "https://www.nvidia.com/en-us/data-center/dgx-b200/ (BF16 4.5 PFLOPS with sparsity per GPU)"),
)


def bf16_peak(device_name: str | None, override_tflops: float | None) -> tuple[float | None, str]:
    """The peak in FLOP/s and where it comes from; (None, why) for a device not in the table."""
    if override_tflops is not None:
        return override_tflops * 1e12, "--peak-tflops"
    if device_name is None:
        return None, "no CUDA device (give --peak-tflops to compute a utilisation)"
    for part, tflops, source in PEAKS:
        if part in device_name:
            return tflops * 1e12, source
    return None, f"{device_name} is not in bench/gpu/peaks.py (give --peak-tflops)"
