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

// The CPU's limits, measured now on n_threads threads (the forward pass's team) with the kernel table's probes
// (KernelTable::read_stream, int8_dot_peak): what a decode step's and a prefill's speed are read against.
struct CpuLimits {
    double read_bytes_per_s = 0;  // a 512 MiB buffer streamed with the widest loads, median of 15 passes
    double int8_ops_per_s = 0;    // int8 dot products from registers (2 ops per multiply-add), median of 7
    int n_threads = 0;
};
CpuLimits measure_cpu_limits(int n_threads);  // about 0.5 s; n_threads as ForwardOptions::n_threads

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
