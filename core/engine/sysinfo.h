// What the machine and the process offer and cost: resident memory from /proc (Linux, 0 where unavailable), the
// CPU kernel set in use, and the GPU where this build has CUDA. The front ends ask here, never kernels/ or cuda/.
#pragma once
#include <cstddef>
#include <string>

namespace strata {
size_t current_rss_bytes();  // VmRSS
size_t peak_rss_bytes();     // VmHWM

// The CPU kernel table picked at start-up: "scalar", "avx2", "avx512" or "neon".
std::string cpu_kernel_isa();

struct GpuInfo {
    std::string name;
    int cc_major = 0, cc_minor = 0;  // compute capability
    int sm_count = 0;
    size_t mem_total = 0;  // bytes
};
// True when this build has the CUDA backend and a usable device; otherwise false and *why says why.
bool gpu_available(std::string* why = nullptr);
GpuInfo gpu_info();  // call only when gpu_available()
// GPU memory bandwidth as a device-to-device copy moves it (bytes read + written per second), measured now.
double gpu_copy_bandwidth();
}  // namespace strata
