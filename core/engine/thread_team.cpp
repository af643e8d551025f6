#include "core/engine/thread_team.h"

#include <chrono>
#include <map>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <climits>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace strata {

namespace {

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

// Sleeps while *word == seen (returns at once if it already differs), and wakes the sleepers on a word: plain
// Linux futexes, so that when a wake-up costs a system call is decided here (only when someone sleeps).
void futex_wait(std::atomic<uint32_t>& word, uint32_t seen) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>& word) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
}
static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free);

// How long a waiting thread spins (with a pause), then yields, before it sleeps on a futex. A decode step's gaps
// between loops are a few microseconds, so the spin covers them; the yield phase hands the core to other
// runnable threads (a preempted teammate among them) while still answering within a scheduler tick; past it the
// thread sleeps, so an idle team burns no CPU.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kYield = std::chrono::microseconds(1000);

// Waits until done() is true, spinning, then yielding, then sleeping on `word` (which whoever makes done() true
// changes and then, if *sleeping says someone sleeps, notifies).
template <class Done, class Sleeping>
void wait_until(Done&& done, std::atomic<uint32_t>& word, Sleeping& sleeping) {
    using clock = std::chrono::steady_clock;
    const auto t0 = clock::now();
    for (int i = 0;; ++i) {
        if (done()) return;
        cpu_relax();
        if ((i & 63) != 63) continue;
        const auto t = clock::now() - t0;
        if (t < kSpin) continue;
        if (t < kYield) {
            std::this_thread::yield();
            continue;
        }
        break;
    }
    for (;;) {
        const uint32_t seen = word.load(std::memory_order_seq_cst);
        if (done()) return;
        sleeping.enter();
        // Checked after announcing the sleep: either the notifier sees the announcement, or we see its change
        // (and the futex returns at once if the word moved since `seen`).
        if (!done()) futex_wait(word, seen);
        sleeping.leave();
    }
}

}  // namespace

ThreadTeam::ThreadTeam(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
    workers_.reserve(static_cast<size_t>(n_threads_ - 1));
    for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker_main(); });
}

ThreadTeam::~ThreadTeam() {
    stop_.store(true, std::memory_order_seq_cst);
    posted_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_all(posted_);
    for (std::thread& t : workers_) t.join();
}

std::shared_ptr<ThreadTeam> ThreadTeam::shared(int n_threads) {
    // The one process-wide table in strata: teams by size, held weakly, so a team lives while a Forward uses it.
    static std::mutex mutex;
    static std::map<int, std::weak_ptr<ThreadTeam>> teams;
    std::lock_guard<std::mutex> lock(mutex);
    std::weak_ptr<ThreadTeam>& slot = teams[n_threads];
    std::shared_ptr<ThreadTeam> team = slot.lock();
    if (!team) {
        team = std::make_shared<ThreadTeam>(n_threads);
        slot = team;
    }
    return team;
}

void ThreadTeam::work(uint32_t epoch) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    for (;;) {
        if (static_cast<uint32_t>(t >> 32) != epoch) return;  // a later loop: not ours
        const uint32_t left = static_cast<uint32_t>(t);
        if (left == 0) return;
        if (!ticket_.compare_exchange_weak(t, t - 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
        // Claimed chunk n_chunks_ - left: the loop cannot finish (and its fields change) before we report it.
        const uint32_t n_chunks = n_chunks_;
        const int64_t b = static_cast<int64_t>(n_chunks - left) * grain_;
        const int64_t e = b + grain_ < n_ ? b + grain_ : n_;
        fn_(ctx_, b, e);
        if (done_.fetch_add(1, std::memory_order_seq_cst) + 1 == n_chunks &&
            caller_sleeping_.load(std::memory_order_seq_cst))
            futex_wake_all(done_);
        t = ticket_.load(std::memory_order_acquire);
    }
}

void ThreadTeam::run(int64_t n, int64_t grain, ChunkFn fn, void* ctx) {
    std::lock_guard<std::mutex> lock(loop_mutex_);
    fn_ = fn, ctx_ = ctx, n_ = n, grain_ = grain;
    n_chunks_ = static_cast<uint32_t>((n + grain - 1) / grain);
    done_.store(0, std::memory_order_relaxed);
    const uint32_t epoch = posted_.load(std::memory_order_relaxed) + 1;
    ticket_.store(static_cast<uint64_t>(epoch) << 32 | n_chunks_, std::memory_order_release);
    posted_.store(epoch, std::memory_order_seq_cst);
    if (sleeping_workers_.load(std::memory_order_seq_cst) > 0) futex_wake_all(posted_);
    work(epoch);
    const uint32_t n_chunks = n_chunks_;
    struct {
        std::atomic<bool>& flag;
        void enter() { flag.store(true, std::memory_order_seq_cst); }
        void leave() { flag.store(false, std::memory_order_relaxed); }
    } sleeping{caller_sleeping_};
    wait_until([&] { return done_.load(std::memory_order_acquire) == n_chunks; }, done_, sleeping);
}

void ThreadTeam::worker_main() {
    // The epoch at construction, not what posted_ holds when this thread first runs: a loop or the destructor may
    // come before that, and a worker that took its epoch as already seen would sleep through it (for the
    // destructor: forever).
    uint32_t seen = 0;
    struct {
        std::atomic<int>& count;
        void enter() { count.fetch_add(1, std::memory_order_seq_cst); }
        void leave() { count.fetch_sub(1, std::memory_order_relaxed); }
    } sleeping{sleeping_workers_};
    for (;;) {
        wait_until([&] { return posted_.load(std::memory_order_acquire) != seen; }, posted_, sleeping);
        // The epoch first, then stop_: the destructor sets stop_ before it moves the epoch, so a worker that
        // takes the destructor's epoch as seen also sees stop_. (Checked the other way round, a worker could pass
        // the check, then take the destructor's epoch as an ordinary loop's, and sleep through it forever.)
        seen = posted_.load(std::memory_order_seq_cst);
        if (stop_.load(std::memory_order_seq_cst)) return;
        work(seen);
    }
}

}  // namespace strata
