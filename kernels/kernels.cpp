#include "kernels/kernels.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/generic/generic.h"

#if defined(STRATA_HAVE_X86)
#include <cpuid.h>
#endif

namespace strata {

#if defined(STRATA_HAVE_X86)
namespace avx2 {
bool fill_table(KernelTable& t);  // returns false where the build has no AVX2 kernels
}
namespace avx512 {
bool fill_table(KernelTable& t);
}
#endif
#if defined(STRATA_HAVE_NEON)
namespace neon {
bool fill_table(KernelTable& t);
}
#endif

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::Scalar: return "scalar";
        case Isa::Avx2: return "avx2";
        case Isa::Avx512: return "avx512";
        case Isa::Neon: return "neon";
    }
    return "?";
}

namespace {

#if defined(STRATA_HAVE_X86)
// F16C (leaf 1, ECX bit 29) and AVX512-VNNI (leaf 7, sub-leaf 0, ECX bit 11) straight from cpuid: clang 14's
// __builtin_cpu_supports knows neither name, and the fuzz build is clang. OS support for the AVX and AVX-512
// register state is part of the avx2 / avx512f checks they are combined with.
bool cpu_has_f16c() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
    return (ecx >> 29) & 1u;
}
bool cpu_has_avx512vnni() {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    return (ecx >> 11) & 1u;
}
#endif

[[maybe_unused]] bool cpu_supports(Isa isa) {  // (only the x86 tables ask it)
    switch (isa) {
        case Isa::Scalar: return true;
#if defined(STRATA_HAVE_X86)
        case Isa::Avx2:
            return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                   cpu_has_f16c();
        case Isa::Avx512:
            return cpu_supports(Isa::Avx2) && __builtin_cpu_supports("avx512f") &&
                   __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                   __builtin_cpu_supports("avx512dq") && cpu_has_avx512vnni();
#endif
#if defined(STRATA_HAVE_NEON)
        case Isa::Neon: return true;
#endif
        default: return false;
    }
}

struct Tables {
    KernelTable scalar, avx2, avx512, neon;
    bool has_avx2 = false, has_avx512 = false, has_neon = false;
    Tables() {
        generic::fill_table(scalar);
        scalar.isa = "scalar";
#if defined(STRATA_HAVE_X86)
        if (cpu_supports(Isa::Avx2)) {
            avx2 = scalar;
            has_avx2 = avx2::fill_table(avx2);
        }
        if (has_avx2 && cpu_supports(Isa::Avx512)) {
            avx512 = avx2;
            has_avx512 = avx512::fill_table(avx512);
        }
#endif
#if defined(STRATA_HAVE_NEON)
        neon = scalar;
        has_neon = neon::fill_table(neon);
#endif
    }
};

const Tables& tables() {
    static const Tables t;
    return t;
}

}  // namespace

const KernelTable* kernels_for(Isa isa) {
    const Tables& t = tables();
    switch (isa) {
        case Isa::Scalar: return &t.scalar;
        case Isa::Avx2: return t.has_avx2 ? &t.avx2 : nullptr;
        case Isa::Avx512: return t.has_avx512 ? &t.avx512 : nullptr;
        case Isa::Neon: return t.has_neon ? &t.neon : nullptr;
    }
    return nullptr;
}

std::vector<Isa> available_isas() {
    std::vector<Isa> out;
    for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon})
        if (kernels_for(i)) out.push_back(i);
    return out;
}

const KernelTable& kernels() {
    static const KernelTable* chosen = [] {
        const std::vector<Isa> isas = available_isas();
        const KernelTable* best = kernels_for(isas.back());
        if (const char* cap = std::getenv("STRATA_ISA"); cap && *cap) {
            for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
                if (std::strcmp(cap, isa_name(i)) == 0) {
                    const KernelTable* t = kernels_for(i);
                    if (!t) throw std::runtime_error(std::string("STRATA_ISA=") + cap + " is not available on this CPU/build");
                    return t;
                }
            }
            throw std::runtime_error(std::string("STRATA_ISA=") + cap + " is not one of scalar, avx2, avx512, neon");
        }
        return best;
    }();
    return *chosen;
}

}  // namespace strata
