// What the process costs: resident memory from /proc (Linux), 0 where unavailable.
#pragma once
#include <cstddef>

namespace strata {
size_t current_rss_bytes();  // VmRSS
size_t peak_rss_bytes();     // VmHWM
}  // namespace strata
