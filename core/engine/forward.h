// The forward pass: a readable loop over the plan's steps (llama2.c's shape), calling the kernel table.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "core/engine/thread_team.h"
#include "kernels/kernels.h"

namespace strata {

namespace cuda {
class Engine;
}

// One K and one V slot per plan *step* (never per file layer): steps that reuse a layer keep separate caches.
// Elements of type(): F32 (the default: every bit of K and V), or F16 as llama.cpp keeps its cache by default
// (half the bytes a decode step reads from it).
class KVCache {
public:
    KVCache(int n_slots, int n_ctx, int kv_dim, KvType type = KvType::F32);
    // Element e of position pos's K / V row: (kv_dim) elements from e = 0.
    uint8_t* k(int slot, int pos, int e = 0) { return k_.get() + index(slot, pos, e); }
    uint8_t* v(int slot, int pos, int e = 0) { return v_.get() + index(slot, pos, e); }
    KvType type() const { return type_; }
    int n_slots() const { return n_slots_; }
    int n_ctx() const { return n_ctx_; }
    int kv_dim() const { return kv_dim_; }
    size_t bytes() const { return static_cast<size_t>(n_ctx_) * bytes_per_position(); }
    // What attending to one more position reads, over every slot (K and V): a decode step's cache traffic.
    size_t bytes_per_position() const { return 2 * static_cast<size_t>(n_slots_) * kv_dim_ * kv_type_bytes(type_); }

private:
    size_t index(int slot, int pos, int e) const {
        return ((static_cast<size_t>(slot) * n_ctx_ + pos) * kv_dim_ + e) * kv_type_bytes(type_);
    }
    int n_slots_, n_ctx_, kv_dim_;
    KvType type_;
    std::unique_ptr<uint8_t[]> k_, v_;  // (n_slots, n_ctx, kv_dim) elements; pages are touched only when written
};

// Activation buffers for a batch of up to max_batch tokens (B below).
struct RunState {
    explicit RunState(const ModelConfig& c, int max_batch);
    int max_batch;
    std::vector<float> x;       // (B, dim) residual stream
    std::vector<float> xb;      // (B, dim) normed input of a sublayer / its output
    std::vector<float> xb2;     // (B, q_dim) attention output, before the output projection
    std::vector<float> q;       // (B, q_dim)
    std::vector<float> k;       // (B, kv_dim)
    std::vector<float> v;       // (B, kv_dim)
    std::vector<float> hb;      // (B, hidden)
    std::vector<float> hb2;     // (B, hidden)
    std::vector<float> logits;  // (B_out, vocab): the last token's, or every token's on request
    std::vector<uint8_t> xq;    // (B, widest quantized activation row) matmul input in the weight's vec_dot_type
};

// The context a Forward gets for ForwardOptions::n_ctx: n_ctx > 0 as it is; 0 the model's training context
// (llama.cpp's -c 0); kDefaultContext (< 0) the training context, at most 4096.
inline constexpr int kDefaultContext = -1;
int context_size(const ModelConfig& c, int n_ctx);
// Threads a Forward runs: all hardware threads for n_threads <= 0, else n_threads, at most the hardware's (more
// threads than the machine has only slow it down).
int hardware_threads();
int thread_count(int n_threads);

struct ForwardOptions {
    int n_ctx = kDefaultContext;  // tokens; see context_size() (also new_cache()'s context)
    int n_threads = 0;            // 0: all hardware threads; see thread_count()
    int max_batch = 256;  // prompt tokens evaluated per batched pass
    // The CPU's KV cache (and new_cache()'s). F32 by default: F16 rounds K and V (as llama.cpp does by default),
    // which moves greedy outputs at near-ties (SmolLM2: KL 0.0026 nats against F32), and halves the cache bytes
    // that decoding at depth reads. The GPU keeps its own cache, F32.
    KvType kv_type = KvType::F32;
    std::string device = "cpu";  // "cpu" or "cuda"
    int n_gpu_steps = -1;        // with cuda: the first N plan steps run on the GPU (-1: all, and the output)
    bool own_cache = true;       // false: no cache of its own; only eval_sequences, whose tokens bring theirs
};

// One token of a batch over several sequences, each with its own KV cache (a server's requests: the decode
// steps of all of them, and chunks of new prompts, in one pass). The cache holds the sequence's positions
// [0, pos) -- or [0, pos + i) where earlier tokens of the same batch are its positions pos .. pos + i - 1.
struct SeqToken {
    int32_t token = 0;
    int pos = 0;               // its position in its own sequence
    KVCache* cache = nullptr;  // that sequence's cache (Forward::new_cache()); its K and V land at pos
    bool logits = false;       // compute this token's logits
};

class Forward {
public:
    Forward(std::shared_ptr<const Model> model, Plan plan, const ForwardOptions& opts = {});
    ~Forward();

    // Evaluates tokens at positions pos, pos+1, ...; the cache must already hold positions [0, pos).
    // Returns the last token's logits (vocab), or every token's (n, vocab) when all_logits.
    // Throws std::runtime_error on context overflow or an out-of-range token id.
    std::span<const float> eval(std::span<const int32_t> tokens, int pos, bool all_logits = false);

    // Evaluates the tokens of several sequences together, max_batch() tokens a pass: every weight is read
    // once a pass for all of them, and each token attends over its own sequence's cache at its own position.
    // A token's logits are the same bits as evaluating its sequence alone (the kernels are batch-invariant).
    // Returns the logits of the tokens that ask, in batch order: (n asking, vocab). CPU only. Throws
    // std::runtime_error on a position outside its cache, a cache of another plan, or a bad token id.
    std::span<const float> eval_sequences(std::span<const SeqToken> batch);
    // A cache for one more sequence of this plan: a slot per step, n_ctx() positions (touched when written).
    KVCache new_cache() const;

    const Model& model() const { return *model_; }
    const std::shared_ptr<const Model>& model_ptr() const { return model_; }
    const Plan& plan() const { return plan_; }
    int n_ctx() const { return n_ctx_; }
    int n_threads() const { return n_threads_; }
    int max_batch() const { return s_.max_batch; }  // tokens per batched pass (eval splits longer inputs)
    const KVCache& kv_cache() const;  // its own (single-sequence) cache
    // Plan steps that run on the GPU (0 on the CPU path), and the GPU engine itself (null on the CPU path).
    int gpu_steps() const { return gpu_steps_; }
    const cuda::Engine* gpu() const { return gpu_.get(); }

    // Runs f(first, end) over pieces of [0, n) on this pass's threads (its thread team), one item per piece:
    // analysis work on the rows eval returned, e.g. scoring each position's logits. f must not throw (it runs
    // on the team's workers) and must not call eval.
    void parallel_for(int64_t n, const std::function<void(int64_t first, int64_t end)>& f) const;

    // Optional observer of the residual stream, for analysis tools (strata layers): called with state 0 (the
    // embeddings, step 0's input) and state i + 1 (after step i), x (B, dim) for the tokens at pos..pos+B-1.
    // Unset, it costs one empty-function test per step.
    using StateObserver = std::function<void(int state, const float* x, int B, int pos)>;
    void set_state_observer(StateObserver f) { observer_ = std::move(f); }

    // The model's output head over n rows of a residual stream x (n, dim): the final norm and the output
    // matmul through the very code eval's own logits take (same kernels, same activation quantization; the
    // kernels are batch-invariant), so the rows of the stream after the last step give eval's logits bit for
    // bit. For a logit lens over an observed state. logits (n, vocab). CPU only; may be called from the state
    // observer (it uses the buffers that the next step overwrites anyway).
    void logits_from_residual(const float* x, int n, float* logits);

private:
    // Which logits a pass computes: none, the last token's, every token's, or those of the rows in out_rows_.
    enum class Logits { None, Last, All, Rows };
    // One pass over tokens[0, B) at positions pos_[b], each into cache_[b].
    void eval_batch(const int32_t* tokens, int B, Logits which, float* logits_out);
    void check_token(int32_t t) const;
    // y (B, rows) = x (B, cols) . W^T, activations quantized once into W's vec_dot_type. same_x: x has not
    // changed since the previous call (q, k and v; gate and up), so its quantized copy is reused where that
    // call made one of the same type and shape.
    void matmul(const WeightView& w, const float* x, int B, float* y, bool same_x = false);
    void rmsnorm_rows(float* out, const float* x, const WeightView& w, int B, int n);
    // x += y over rows of n floats, and the gated activation hb = act(hb) * hb2, split across the threads.
    void add(float* x, const float* y, int rows, int64_t n);
    void gated(float* hb, const float* hb2, int rows, int64_t n);
    void attention(const Step& step, int B);
    void store_kv(KvType t, uint8_t* dst, const float* x, int n);  // one K or V row into a cache of type t
    // logits (n, vocab) = output . rmsnorm(x (n <= max_batch, dim), output_norm)
    void output_head(const float* x, int n, float* logits);

    std::shared_ptr<const Model> model_;
    Plan plan_;
    const KernelTable& K_;
    int n_ctx_;
    int n_threads_;
    std::shared_ptr<ThreadTeam> team_;  // every parallel loop of the pass (see thread_team.h)
    KvType kv_type_;                    // of its own cache and new_cache()'s
    std::optional<KVCache> kv_;         // the single-sequence API's cache (absent without own_cache)
    RunState s_;
    std::vector<int> pos_;          // (max_batch) position of each token of the pass
    std::vector<KVCache*> cache_;   // (max_batch) the cache it goes into
    std::vector<int> out_rows_;     // (<= max_batch) the rows whose logits a Logits::Rows pass computes
    StateObserver observer_;
    std::vector<float> rope_factors_;  // (rope_dim/2) Llama 3 frequency factors, or empty
    struct Quantized {                 // what s_.xq holds: x's B rows of n in vec_dot type t
        const float* x = nullptr;
        DType t{};
        int64_t n = 0;
        int B = 0;
    } xq_of_;
    // --device cuda: steps [0, gpu_steps_) run on the GPU; when that is every step, the output does too and
    // the logits are read from the engine's pinned buffer (gpu_logits_).
    std::unique_ptr<cuda::Engine> gpu_;
    int gpu_steps_ = 0;
    const float* gpu_logits_ = nullptr;
};

}  // namespace strata
