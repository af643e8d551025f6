#include "core/engine/sysinfo.h"

#include <cstdio>
#include <cstring>

#include "cuda/backend.h"
#include "kernels/kernels.h"

namespace strata {

namespace {
size_t status_kib(const char* field) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kib = 0;
    const size_t n = std::strlen(field);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, field, n) == 0 && line[n] == ':') {
            std::sscanf(line + n + 1, "%zu", &kib);
            break;
        }
    }
    std::fclose(f);
    return kib;
}
}  // namespace

size_t current_rss_bytes() { return status_kib("VmRSS") * 1024; }
size_t peak_rss_bytes() { return status_kib("VmHWM") * 1024; }

std::string cpu_kernel_isa() { return kernels().isa; }

bool gpu_available(std::string* why) { return cuda::available(why); }

GpuInfo gpu_info() {
    const cuda::DeviceInfo d = cuda::device_info();
    return GpuInfo{d.name, d.cc_major, d.cc_minor, d.sm_count, d.mem_total};
}

double gpu_copy_bandwidth() { return cuda::measure_copy_bandwidth(); }

}  // namespace strata
