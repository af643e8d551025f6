// ThreadTeam (core/engine/thread_team.h): every item of a loop runs exactly once, on any team size (more threads
// than cores too, so the OS preempts them mid-loop), over many short loops in a row, after the workers have gone
// to sleep, and with loops posted from several threads at once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/engine/sysinfo.h"
#include "core/engine/thread_team.h"

using namespace strata;

namespace {
// Runs a loop of n items in chunks of grain on the team; returns how often each item ran.
std::vector<int> coverage(ThreadTeam& team, int64_t n, int64_t grain) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    team.parallel_for(n, grain, [&](int64_t b, int64_t e) {
        if (team.size() > 1) {  // a team of one runs the whole range in one call
            EXPECT_LE(e - b, grain);
        }
        EXPECT_LT(b, e);
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
    });
    std::vector<int> out;
    for (auto& h : hits) out.push_back(h.load());
    return out;
}
}  // namespace

TEST(ThreadTeam, EveryItemRunsOnceOnAnyTeamSize) {
    for (int threads : {1, 2, 3, 8}) {
        ThreadTeam team(threads);
        EXPECT_EQ(team.size(), threads);
        for (int64_t n : {1, 2, 7, 64, 1000, 4097})
            for (int64_t grain : {1, 3, 64, 5000}) {
                const std::vector<int> hits = coverage(team, n, grain);
                for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)], 1) << threads << " " << n << " " << grain << " " << i;
            }
    }
}

TEST(ThreadTeam, ManyShortLoopsInARow) {
    ThreadTeam team(4);  // more threads than this machine may have: workers get preempted between and inside loops
    int64_t total = 0;
    std::atomic<int64_t> sum{0};
    for (int loop = 0; loop < 20000; ++loop) {
        const int64_t n = 1 + loop % 37;
        team.parallel_for(n, 1, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) sum.fetch_add(i + loop);
        });
        total += n * (n - 1) / 2 + n * loop;
    }
    EXPECT_EQ(sum.load(), total);
}

TEST(ThreadTeam, WorkersWakeAfterSleeping) {
    ThreadTeam team(2);
    for (int round = 0; round < 3; ++round) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin and yield phases: asleep
        std::atomic<int> ran{0};
        std::vector<std::thread::id> who(64);
        team.parallel_for(64, 1, [&](int64_t b, int64_t) {
            who[static_cast<size_t>(b)] = std::this_thread::get_id();
            std::this_thread::sleep_for(std::chrono::microseconds(200));  // long enough for the worker to join in
            ran.fetch_add(1);
        });
        EXPECT_EQ(ran.load(), 64);
        int mine = 0;
        for (const auto& id : who) mine += id == std::this_thread::get_id();
        EXPECT_LT(mine, 64) << "the worker took no chunk after waking";
    }
}

TEST(ThreadTeam, LoopsFromSeveralThreadsTakeTurns) {
    std::shared_ptr<ThreadTeam> team = ThreadTeam::shared(3);
    EXPECT_EQ(team, ThreadTeam::shared(3));  // one team per size in the process
    std::vector<std::thread> callers;
    std::atomic<int> bad{0};
    for (int c = 0; c < 3; ++c)
        callers.emplace_back([&] {
            for (int loop = 0; loop < 500; ++loop) {
                const std::vector<int> hits = coverage(*team, 100 + loop % 7, 4);
                for (int h : hits) bad += h != 1;
            }
        });
    for (auto& t : callers) t.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST(ThreadTeam, CpuLimitsAreMeasured) {
    const CpuLimits lim = measure_cpu_limits(2);
    // Between 0.1 GB/s and 10 TB/s: a probe whose reads were dropped, or a timing bug, lands far outside.
    EXPECT_GT(lim.read_bytes_per_s, 1e8);
    EXPECT_LT(lim.read_bytes_per_s, 1e13);
    EXPECT_GT(lim.int8_ops_per_s, 1e8);
    EXPECT_GE(lim.n_threads, 1);
}

// A team destroyed right after a loop, while its workers may still be waking for that loop: every worker must
// see the stop (a worker that checked it before the destructor set it, and then took the destructor's epoch as a
// loop's, slept forever in the join: Speculative.SamplingKeepsTheTargetDistribution hung on it once). A hang
// here is the failure; ctest's timeout ends it.
TEST(ThreadTeam, DestroyedRightAfterALoopJoinsItsWorkers) {
    for (int i = 0; i < 3000; ++i) {
        ThreadTeam team(2 + i % 3);
        std::atomic<int> ran{0};
        team.parallel_for(8, 1, [&](int64_t b, int64_t e) { ran.fetch_add(static_cast<int>(e - b)); });
        ASSERT_EQ(ran.load(), 8);
    }
}
