// The CUDA backend's entry points in a build without CUDA (no nvcc found, or -DSTRATA_CUDA=OFF): every one
// reports that, so `--device cuda` fails with a clear message instead of a missing symbol.
#include <stdexcept>

#include "cuda/backend.h"

namespace strata::cuda {

namespace {
constexpr const char* kNoCuda =
    "this strata was built without CUDA (configure with -DSTRATA_CUDA=ON where nvcc is installed)";
[[noreturn]] void no_cuda() { throw std::runtime_error(kNoCuda); }
}  // namespace

bool available(std::string* why) {
    if (why) *why = kNoCuda;
    return false;
}
DeviceInfo device_info() { no_cuda(); }

struct Engine::Impl {};
Engine::Engine(const ModelDesc&, const std::vector<int>&, const EngineOptions&) { no_cuda(); }
Engine::~Engine() = default;
const float* Engine::eval(const float*, int, int, int, float*) { no_cuda(); }
size_t Engine::weight_bytes() const { return 0; }
size_t Engine::kv_bytes() const { return 0; }
int Engine::n_steps() const { return 0; }
const void* Engine::step_weight_address(int) const { return nullptr; }
double measure_copy_bandwidth(size_t, int) { no_cuda(); }

namespace check {
void matmul(const Tensor&, const float*, int, float*, int) { no_cuda(); }
void matmul_multi(const std::vector<Tensor>&, const float*, int, const std::vector<float*>&, int) { no_cuda(); }
void glu_matmul(const Tensor&, const Tensor&, const float*, bool, float*, DType, int8_t*, float*, float*) { no_cuda(); }
void quantize(DType, const float*, int, int8_t*, float*, float*) { no_cuda(); }
void rmsnorm(const float*, const float*, int, int, float, float*) { no_cuda(); }
void residual_rmsnorm(float*, const float*, const float*, const float*, int, int, float, float*) { no_cuda(); }
void rope(float*, int, int, int, int, int, float, float, const float*, bool) { no_cuda(); }
void attention(const float*, const float*, const float*, int, int, int, int, int, int, float, int, float*, DType, int8_t*,
               float*, float*) {
    no_cuda();
}
void glu(float*, const float*, int64_t, bool) { no_cuda(); }
}  // namespace check

}  // namespace strata::cuda
