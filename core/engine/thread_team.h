// A persistent team of threads for the forward pass's parallel loops: the calling thread and n - 1 workers that
// wait, spinning briefly, for the next loop. Why not oneTBB's parallel_for (which the rest of strata uses): a
// decode step of a 1B model is ~250 small loops (every matmul, norm, add) of 20-200 us each, and a TBB dispatch
// per loop (task spawn, a worker woken from sleep, the join) costs several microseconds and varies with what the
// scheduler's workers were doing; here a loop is posted with one atomic store that a spinning worker sees within
// a fraction of a microsecond, as llama.cpp's threadpool (or its OpenMP team) does between its graph's ops.
//
// A loop is split in chunks that every thread takes in turn from one counter, the caller included, so a thread
// that the OS preempts (2 cores shared with other processes) delays the loop by at most the chunk it holds: the
// others take the remaining chunks, and the caller never waits for a worker that has not started. Waiting (a
// worker for the next loop, the caller for the last chunk) spins for a few microseconds with a pause, then yields,
// then sleeps on a futex, so an idle team costs no CPU and a preempted thread cannot stall the
// others forever.
//
// Teams are shared by thread count within a process (ThreadTeam::shared), as TBB's worker pool was: a
// speculative decoder's draft and target, or several models in one process, use one team instead of leaving
// each other's workers spinning. Loops from several threads at once take turns (a mutex per loop).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace strata {

class ThreadTeam {
public:
    explicit ThreadTeam(int n_threads);  // n_threads >= 1: the caller and n_threads - 1 workers
    ~ThreadTeam();
    ThreadTeam(const ThreadTeam&) = delete;
    ThreadTeam& operator=(const ThreadTeam&) = delete;

    // The process's team of n_threads threads, made on first use and kept while someone holds it.
    static std::shared_ptr<ThreadTeam> shared(int n_threads);

    int size() const { return n_threads_; }

    // f(begin, end) over [0, n) in chunks of `grain` items (the last one shorter), on every thread of the team;
    // returns when every chunk is done. f must not throw (it runs on the workers) and must not call back into
    // this team. Up to one chunk (n <= grain) runs here, on the calling thread, with no hand-over.
    template <class F>
    void parallel_for(int64_t n, int64_t grain, F&& f) {
        if (n <= 0) return;
        if (grain < 1) grain = 1;
        if (n_threads_ == 1 || n <= grain) return f(int64_t{0}, n);
        using Fn = std::remove_reference_t<F>;
        run(n, grain, [](void* ctx, int64_t b, int64_t e) { (*static_cast<Fn*>(ctx))(b, e); },
            const_cast<void*>(static_cast<const void*>(&f)));
    }

    // f(i) for every i in [0, n), one item per chunk (jobs of some size each: attention heads, tokens).
    template <class F>
    void for_each(int64_t n, F&& f) {
        parallel_for(n, 1, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) f(i);
        });
    }

private:
    using ChunkFn = void (*)(void* ctx, int64_t begin, int64_t end);
    void run(int64_t n, int64_t grain, ChunkFn fn, void* ctx);
    // Takes and runs chunks of the loop `epoch` until none is left.
    void work(uint32_t epoch);
    void worker_main();

    const int n_threads_;
    std::mutex loop_mutex_;  // one loop at a time
    // The loop: written by the caller before it publishes the epoch, read by a thread only after it has claimed
    // one of its chunks (so never while the next loop's caller writes them).
    ChunkFn fn_ = nullptr;
    void* ctx_ = nullptr;
    int64_t n_ = 0, grain_ = 1;
    uint32_t n_chunks_ = 0;

    // (epoch << 32) | chunks not yet taken. A thread claims a chunk by a compare-and-swap that also checks the
    // epoch, so a worker that wakes up late can never take a chunk of a later loop for an earlier one.
    alignas(64) std::atomic<uint64_t> ticket_{0};
    alignas(64) std::atomic<uint32_t> done_{0};    // chunks finished in the current loop
    alignas(64) std::atomic<uint32_t> posted_{0};  // the current loop's epoch: what waiting workers watch
    std::atomic<int> sleeping_workers_{0};
    std::atomic<bool> caller_sleeping_{false};
    std::atomic<bool> stop_{false};
    std::vector<std::thread> workers_;
};

}  // namespace strata
