// Matmul kernels per ISA x weight dtype x shape x batch, single-threaded (kernels take row ranges; threading lives
// in core/), next to a memory-read-bandwidth probe so decode (B=1) speed can be read against what the memory gives.
//
//   bench_matmul --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_matmul --benchmark_filter='matmul/avx512/Q4_0/.*'
//
//   bench_matmul --benchmark_filter='(matmul|packed)/avx512/Q4_K/.*'   (the plain and the packed layout)
//
// Shapes: rows x n (output x input) = 4096x4096 (Llama-3-8B attention), 2048x8192 (Llama-3.2-1B FFN down),
// 576x1536 (SmolLM2-135M FFN down); B = 1 (decode: weights streamed once per token) and B = 64 (prefill).
// Weights come from a pool of ~1 GiB of distinct random matrices, used in turn, so at B=1 they are read from memory
// like the probe's buffer and not from a cache (the L3 of a server part holds a whole 4096x4096 Q4_0 matrix).
// STRATA_BENCH_POOL_MB=0 in the environment uses a single matrix instead (cache-resident where it fits: the kernels'
// compute speed without the memory wall).
// Counters: bytes_per_second = weight bytes read per second; FLOP/s = 2 * rows * n * B per second. Times are CPU
// time (the default): on a shared machine wall time also counts the time other processes held the core.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/dtype.h"
#include "kernels/kernels.h"

namespace {

using namespace strata;

constexpr size_t kPoolBytes = size_t(1) << 30;  // also the probe's buffer

size_t pool_bytes() {
    const char* e = std::getenv("STRATA_BENCH_POOL_MB");
    return e && *e ? static_cast<size_t>(std::strtoull(e, nullptr, 10)) << 20 : kPoolBytes;
}

struct AlignedFree {
    void operator()(void* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<uint8_t, AlignedFree>;

Buffer alloc_bytes(size_t n) {
    void* p = std::aligned_alloc(4096, (n + 4095) / 4096 * 4096);
    if (!p) throw std::bad_alloc();
    return Buffer(static_cast<uint8_t*>(p));
}

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        std::memcpy(p + i, &s, 8);
    }
    for (; i < n; ++i) p[i] = static_cast<uint8_t>(i);
}

// Offsets of the f16 scale fields in a block, so random bytes become a valid, finite block (speed does not depend
// on the values, but NaNs or subnormals could).
std::vector<size_t> half_fields(DType t) {
    switch (t) {
        case DType::Q4_0:
        case DType::Q5_0:
        case DType::Q8_0: return {0};
        case DType::Q4_1:
        case DType::Q5_1:
        case DType::Q4_K:
        case DType::Q5_K: return {0, 2};
        case DType::Q6_K: return {208};
        default: return {};
    }
}

// The pool of weight matrices for one (dtype, rows, n); kept while consecutive benchmarks use it.
struct Pool {
    DType t{};
    int64_t rows = 0, n = 0;
    size_t matrix_bytes = 0, count = 0;
    Buffer data;
};

const Pool& weight_pool(DType t, int64_t rows, int64_t n) {
    static Pool pool;
    if (pool.data && pool.t == t && pool.rows == rows && pool.n == n) return pool;
    pool.data.reset();
    pool.t = t, pool.rows = rows, pool.n = n;
    pool.matrix_bytes = dtype_row_bytes(t, n) * static_cast<size_t>(rows);
    pool.count = std::max<size_t>(1, pool_bytes() / pool.matrix_bytes);
    pool.data = alloc_bytes(pool.matrix_bytes * pool.count);
    uint8_t* p = pool.data.get();
    const size_t total = pool.matrix_bytes * pool.count;
    const auto& tr = dtype_traits(t);
    if (tr.block_elems == 1) {  // float types: random values in [-1, 1), converted
        std::vector<float> row(static_cast<size_t>(n));
        std::mt19937 rng(1);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (auto& f : row) f = u(rng);
        const size_t rb = dtype_row_bytes(t, n);
        std::vector<uint8_t> conv(rb);
        kernels_for(Isa::Scalar)->quantize_row[static_cast<uint32_t>(t)](row.data(), conv.data(), n);
        for (size_t off = 0; off < total; off += rb) std::memcpy(p + off, conv.data(), rb);
        // Vary the rows a little so no two matrices are bit-identical (cheap: one element per row).
        for (size_t off = 0, i = 0; off < total; off += rb, ++i) p[off] ^= static_cast<uint8_t>(i);
    } else {
        fill_random(p, total, 42);
        const f16_t h = f32_to_f16(0.01f);
        for (size_t off = 0; off < total; off += tr.block_bytes)
            for (size_t f : half_fields(t)) std::memcpy(p + off + f, &h, 2);
    }
    return pool;
}

std::vector<uint8_t> activations(const KernelTable& K, DType w, int64_t n, int64_t B) {
    const DType a = dtype_traits(w).vec_dot_type;
    const size_t xrb = dtype_row_bytes(a, n);
    std::vector<float> x(static_cast<size_t>(n));
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    std::vector<uint8_t> xq(xrb * static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
        for (auto& f : x) f = nd(rng);
        K.quantize_row[static_cast<uint32_t>(a)](x.data(), xq.data() + b * xrb, n);
    }
    return xq;
}

// The same pool in the ISA's packed layout (KernelTable::repack: what the model loader makes of these types), so
// that packed/... and matmul/... of one (dtype, shape, B) compare the two layouts over the same weights.
const Pool& packed_pool(const KernelTable& K, DType t, int64_t rows, int64_t n) {
    static Pool pool;
    static const KernelTable* owner = nullptr;
    if (pool.data && owner == &K && pool.t == t && pool.rows == rows && pool.n == n) return pool;
    const Pool& src = weight_pool(t, rows, n);
    pool.data.reset();
    owner = &K, pool.t = t, pool.rows = rows, pool.n = n, pool.count = src.count;
    pool.matrix_bytes = (K.packed_size(t, rows, n) + 4095) / 4096 * 4096;
    pool.data = alloc_bytes(pool.matrix_bytes * pool.count);
    for (size_t i = 0; i < pool.count; ++i)
        K.repack[static_cast<uint32_t>(t)](src.data.get() + i * src.matrix_bytes, dtype_row_bytes(t, n), rows, n,
                                           pool.data.get() + i * pool.matrix_bytes);
    return pool;
}

// One matmul over the pool's matrices in turn (so the weights come from memory, as in decode), in the file's
// layout or, packed, in the ISA's packed one. Bytes processed: the file's bytes of the matrix either way, so the
// two layouts' GB/s compare as the same work.
void bm_matmul(benchmark::State& state, Isa isa, DType t, int64_t rows, int64_t n, int64_t B, bool packed) {
    const KernelTable& K = *kernels_for(isa);
    const Pool& pool = packed ? packed_pool(K, t, rows, n) : weight_pool(t, rows, n);
    const auto xq = activations(K, t, n, B);
    const size_t wrb = dtype_row_bytes(t, n), xrb = dtype_row_bytes(dtype_traits(t).vec_dot_type, n);
    std::vector<float> y(static_cast<size_t>(rows * B));
    size_t which = 0;
    for (auto _ : state) {
        const uint8_t* w = pool.data.get() + which * pool.matrix_bytes;
        if (packed)
            K.matmul_packed[static_cast<uint32_t>(t)](w, n, 0, rows, xq.data(), xrb, B, y.data(), rows);
        else
            K.matmul[static_cast<uint32_t>(t)](w, wrb, n, 0, rows, xq.data(), xrb, B, y.data(), rows);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
        if (++which == pool.count) which = 0;
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                            static_cast<int64_t>(wrb * static_cast<size_t>(rows)));
    state.counters["FLOP/s"] = benchmark::Counter(2.0 * static_cast<double>(rows * n * B),
                                                  benchmark::Counter::kIsIterationInvariantRate,
                                                  benchmark::Counter::OneK::kIs1000);
}

// Memory-read bandwidth: a streaming sum over a 1 GiB buffer, the ceiling for a decode matmul that streams its
// weights once. What one core gets depends on how it reads (on the machine this was written on: 8.7 GB/s from one
// plain stream, 15 GB/s from four streams with software prefetch), so the probe comes in two forms:
//   memread/1GiB/streams:1           one sequential stream, hardware prefetch only;
//   memread/1GiB/streams:4/prefetch  four interleaved streams (quarters of the buffer), each prefetched 8 KiB
//                                    ahead, as the kernels read: a tile of rows, with the next tile prefetched.
void bm_memread(benchmark::State& state, int streams, bool prefetch) {
    static Buffer buf = [] {
        Buffer b = alloc_bytes(kPoolBytes);
        fill_random(b.get(), kPoolBytes, 3);
        return b;
    }();
    const auto* p = reinterpret_cast<const uint64_t*>(buf.get());
    const size_t per = kPoolBytes / 8 / static_cast<size_t>(streams);
    for (auto _ : state) {
        uint64_t s[4] = {};
        for (size_t i = 0; i < per; i += 8)
            for (int st = 0; st < streams; ++st) {
                const uint64_t* q = p + st * per + i;
                if (prefetch) __builtin_prefetch(q + 1024);
                s[st] += (q[0] + q[1]) + (q[2] + q[3]) + (q[4] + q[5]) + (q[6] + q[7]);
            }
        benchmark::DoNotOptimize(s[0] + s[1] + s[2] + s[3]);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kPoolBytes));
}

void register_all() {
    benchmark::RegisterBenchmark("memread/1GiB/streams:1", bm_memread, 1, false)->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("memread/1GiB/streams:4/prefetch", bm_memread, 4, true)
        ->Unit(benchmark::kMillisecond);
    struct Shape {
        int64_t rows, n;
    };
    const Shape shapes[] = {{4096, 4096}, {2048, 8192}, {576, 1536}};
    const DType types[] = {DType::Q4_0, DType::Q4_1, DType::Q8_0, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                           DType::Q5_0, DType::Q5_1, DType::F16,  DType::BF16, DType::F32};
    // Grouped by (dtype, shape) so each weight pool is built once.
    for (DType t : types)
        for (const Shape& s : shapes)
            for (int64_t B : {1, 64})
                for (Isa isa : available_isas()) {
                    const std::string name = std::string("matmul/") + isa_name(isa) + "/" + dtype_name(t) + "/" +
                                             std::to_string(s.rows) + "x" + std::to_string(s.n) + "/B:" +
                                             std::to_string(B);
                    benchmark::RegisterBenchmark(name.c_str(), bm_matmul, isa, t, s.rows, s.n, B, false)
                        ->Unit(benchmark::kMillisecond);
                    const KernelTable& K = *kernels_for(isa);
                    if (K.repack[static_cast<uint32_t>(t)] && s.rows % K.pack_rows == 0) {
                        const std::string pname = "packed" + name.substr(name.find('/'));
                        benchmark::RegisterBenchmark(pname.c_str(), bm_matmul, isa, t, s.rows, s.n, B, true)
                            ->Unit(benchmark::kMillisecond);
                    }
                }
}

}  // namespace

int main(int argc, char** argv) {
    register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
