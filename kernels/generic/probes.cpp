// Scalar probes (KernelTable::read_stream, int8_dot_peak): what plain C++ reaches, for the scalar table.
#include <cstring>

#include "kernels/generic/generic.h"

namespace strata::generic {

namespace {

uint64_t read_stream(const void* p, size_t bytes) {
    const auto* w = static_cast<const uint64_t*>(p);
    uint64_t a[8] = {};
    for (size_t i = 0; i < bytes / 8; i += 8)
        for (int k = 0; k < 8; ++k) a[k] += w[i + k];
    return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

int64_t int8_dot_peak(int64_t rounds, int32_t* sink) {
    int8_t x[64], y[64];
    for (int i = 0; i < 64; ++i) x[i] = static_cast<int8_t>(*sink + i), y[i] = static_cast<int8_t>(3 * i - *sink);
    int32_t acc[16] = {};
    for (int64_t r = 0; r < rounds; ++r)
        for (int i = 0; i < 64; ++i) acc[i % 16] += x[i] * y[i];
    int32_t s = 0;
    for (int32_t v : acc) s += v;
    *sink = s;
    return rounds * 64;
}

}  // namespace

void fill_probes(KernelTable& t) {
    t.read_stream = read_stream;
    t.int8_dot_peak = int8_dot_peak;
}

}  // namespace strata::generic
