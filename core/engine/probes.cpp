// measure_cpu_limits (sysinfo.h): the kernel table's probes on the forward pass's thread team.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#include "core/engine/forward.h"
#include "core/engine/sysinfo.h"
#include "core/engine/thread_team.h"
#include "kernels/kernels.h"

namespace strata {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Read bandwidth: passes over a buffer 16x a large L3, in chunks of 8 MiB that the threads take in turn (each
// chunk one sequential stream), the buffer allocated like the packed weights (aligned_alloc, 4 KiB pages).
double read_bandwidth(ThreadTeam& team, const KernelTable& K) {
    constexpr size_t kBytes = size_t(512) << 20, kChunk = size_t(8) << 20;
    constexpr int kPasses = 15;
    struct Free {
        void operator()(void* p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t, Free> buf(static_cast<uint8_t*>(std::aligned_alloc(4096, kBytes)));
    if (!buf) throw std::bad_alloc();
    // Distinct bytes on every page (a buffer of equal pages could be merged into one by the host's same-page
    // merging and read from cache), written on the team so the pages are faulted in before the timing.
    team.parallel_for(static_cast<int64_t>(kBytes / kChunk), 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
            uint64_t x = 0x9E3779B97F4A7C15ULL * static_cast<uint64_t>(c + 1);
            auto* w = reinterpret_cast<uint64_t*>(buf.get() + c * kChunk);
            for (size_t i = 0; i < kChunk / 8; ++i) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                w[i] = x;
            }
        }
    });
    std::vector<uint64_t> sums(kBytes / kChunk);
    std::vector<double> rates;
    for (int pass = -1; pass < kPasses; ++pass) {  // pass -1: warm-up
        const auto t0 = Clock::now();
        team.parallel_for(static_cast<int64_t>(kBytes / kChunk), 1, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) sums[c] = K.read_stream(buf.get() + c * kChunk, kChunk);
        });
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        if (pass >= 0) rates.push_back(static_cast<double>(kBytes) / s);
    }
    volatile uint64_t keep = 0;
    for (uint64_t v : sums) keep = keep + v;
    return median(rates);
}

// Int8 dot peak: chunks of about a millisecond of dot instructions, 8 per thread, all threads at once.
double int8_peak(ThreadTeam& team, const KernelTable& K) {
    int32_t sink = 0;
    int64_t rounds = 1 << 12;
    for (;;) {  // calibrate one chunk's rounds on this thread
        const auto t0 = Clock::now();
        K.int8_dot_peak(rounds, &sink);
        if (std::chrono::duration<double>(Clock::now() - t0).count() > 1e-3 || rounds > (int64_t(1) << 40)) break;
        rounds *= 2;
    }
    const int64_t chunks = 8 * static_cast<int64_t>(team.size());
    std::vector<int32_t> sinks(static_cast<size_t>(chunks));
    std::vector<double> rates;
    for (int pass = -1; pass < 7; ++pass) {
        std::vector<int64_t> macs(static_cast<size_t>(chunks));
        const auto t0 = Clock::now();
        team.parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) macs[c] = K.int8_dot_peak(rounds, &sinks[c]);
        });
        const double s = std::chrono::duration<double>(Clock::now() - t0).count();
        int64_t total = 0;
        for (int64_t m : macs) total += m;
        if (pass >= 0) rates.push_back(2.0 * static_cast<double>(total) / s);
    }
    return median(rates);
}

}  // namespace

CpuLimits measure_cpu_limits(int n_threads) {
    const KernelTable& K = kernels();
    std::shared_ptr<ThreadTeam> team = ThreadTeam::shared(thread_count(n_threads));
    CpuLimits lim;
    lim.n_threads = team->size();
    if (K.read_stream) lim.read_bytes_per_s = read_bandwidth(*team, K);
    if (K.int8_dot_peak) lim.int8_ops_per_s = int8_peak(*team, K);
    return lim;
}

}  // namespace strata
