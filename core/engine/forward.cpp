#include "core/engine/forward.h"

#include "cuda/backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace strata {

KVCache::KVCache(int n_slots, int n_ctx, int kv_dim, KvType type)
    : n_slots_(n_slots), n_ctx_(n_ctx), kv_dim_(kv_dim), type_(type) {
    if (n_slots <= 0 || n_ctx <= 0 || kv_dim <= 0) throw std::invalid_argument("KV cache: empty shape");
    const size_t n = static_cast<size_t>(n_slots) * n_ctx * kv_dim;
    // Pages are touched only when written, so an over-large cache would fail late, mid-generation:
    // refuse up front what this machine's memory cannot hold.
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    const double need = 2.0 * static_cast<double>(n) * kv_type_bytes(type), have = static_cast<double>(pages) * page;
    if (pages > 0 && page > 0 && need > have)
    {
        char msg[256];
        std::snprintf(msg, sizeof msg,
                      "a context of %d tokens over %d steps needs a %.1f GiB KV cache, more than this machine's "
                      "%.1f GiB of memory: lower -c / --ctx-size",
                      n_ctx, n_slots, need / (1 << 30), have / (1 << 30));
        throw std::runtime_error(msg);
    }
    k_.reset(new uint8_t[n * kv_type_bytes(type)]);  // uninitialised on purpose: written before it is read
    v_.reset(new uint8_t[n * kv_type_bytes(type)]);
}

RunState::RunState(const ModelConfig& c, int B) : max_batch(B) {
    const size_t b = static_cast<size_t>(B);
    x.resize(b * c.dim);
    xb.resize(b * c.dim);
    xb2.resize(b * c.q_dim());
    q.resize(b * c.q_dim());
    k.resize(b * c.kv_dim());
    v.resize(b * c.kv_dim());
    hb.resize(b * c.hidden_dim);
    hb2.resize(b * c.hidden_dim);
}

int context_size(const ModelConfig& c, int n_ctx) {
    if (n_ctx > 0) return n_ctx;
    return n_ctx == 0 ? c.n_ctx_train : std::min(c.n_ctx_train, 4096);
}

int hardware_threads() {
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : static_cast<int>(n);
}

int thread_count(int n_threads) {
    const int hw = hardware_threads();
    return n_threads <= 0 ? hw : std::min(n_threads, hw);
}

namespace {

// Bytes of the widest quantized activation row any matmul of this model needs.
size_t max_activation_row_bytes(const ModelConfig& c, const ModelWeights& w) {
    size_t m = 0;
    auto fit = [&](const WeightView* v) {
        if (!v) return;
        m = std::max(m, dtype_row_bytes(dtype_traits(v->dtype).vec_dot_type, v->cols()));
    };
    fit(w.output);
    for (const LayerWeights& L : w.layers)
        for (const WeightView* v : {L.wq, L.wk, L.wv, L.wo, L.w_gate, L.w_up, L.w_down}) fit(v);
    return m;
}

// The model as the CUDA backend sees it: plain tensors and numbers (cuda/ knows no Model).
cuda::Tensor cuda_tensor(const WeightView* w) {
    if (!w) return {};
    return cuda::Tensor{w->data, w->dtype, w->rows(), w->cols(), w->row_bytes};
}

cuda::ModelDesc cuda_model(const Model& model, const std::vector<float>& rope_factors) {
    const ModelConfig& c = model.config();
    const ModelWeights& W = model.weights();
    cuda::ModelDesc d;
    d.dim = c.dim, d.hidden_dim = c.hidden_dim, d.n_heads = c.n_heads, d.n_kv_heads = c.n_kv_heads;
    d.head_dim = c.head_dim, d.vocab_size = c.vocab_size, d.rope_dim = c.rope_dim, d.rms_eps = c.rms_eps;
    d.rope_neox = c.rope_neox, d.sliding_window = c.sliding_window, d.attn_scale = c.attn_scale;
    d.ffn_gelu = c.ffn_gelu, d.rope_factors = rope_factors;
    for (const LayerWeights& L : W.layers) {
        cuda::LayerDesc l;
        l.attn_norm = cuda_tensor(L.attn_norm), l.wq = cuda_tensor(L.wq), l.wk = cuda_tensor(L.wk);
        l.wv = cuda_tensor(L.wv), l.wo = cuda_tensor(L.wo), l.bq = cuda_tensor(L.bq), l.bk = cuda_tensor(L.bk);
        l.bv = cuda_tensor(L.bv), l.q_norm = cuda_tensor(L.q_norm), l.k_norm = cuda_tensor(L.k_norm);
        l.post_attn_norm = cuda_tensor(L.post_attn_norm), l.ffn_norm = cuda_tensor(L.ffn_norm);
        l.w_gate = cuda_tensor(L.w_gate), l.w_up = cuda_tensor(L.w_up), l.w_down = cuda_tensor(L.w_down);
        l.post_ffn_norm = cuda_tensor(L.post_ffn_norm);
        l.rope_theta = L.rope_theta, l.rope_freq_scale = L.rope_freq_scale;
        l.sliding = L.kind == LayerKind::SlidingWindow;
        d.layers.push_back(l);
    }
    d.output_norm = cuda_tensor(W.output_norm);
    d.output = cuda_tensor(W.output);
    return d;
}

}  // namespace

Forward::Forward(std::shared_ptr<const Model> model, Plan plan, const ForwardOptions& opts)
    : model_(std::move(model)),
      plan_(std::move(plan)),
      K_(kernels()),
      n_ctx_(context_size(model_->config(), opts.n_ctx)),
      n_threads_(thread_count(opts.n_threads)),
      team_(ThreadTeam::shared(n_threads_)),
      kv_type_(opts.kv_type),
      s_(model_->config(), std::max(1, opts.max_batch)) {
    const ModelConfig& c = model_->config();
    if (opts.own_cache) kv_.emplace(plan_.n_steps(), n_ctx_, c.kv_dim(), kv_type_);
    pos_.resize(static_cast<size_t>(s_.max_batch));
    cache_.resize(static_cast<size_t>(s_.max_batch));
    s_.xq.resize(static_cast<size_t>(s_.max_batch) * max_activation_row_bytes(c, model_->weights()));
    s_.logits.resize(static_cast<size_t>(c.vocab_size));
    if (const WeightView* f = model_->weights().rope_freqs) {
        rope_factors_.assign(reinterpret_cast<const float*>(f->data),
                             reinterpret_cast<const float*>(f->data) + f->elements());
    }
    for (const Step& st : plan_.steps)
        if (st.w != &model_->weights().layers.at(static_cast<size_t>(st.file_layer)))
            throw std::invalid_argument("plan does not belong to this model");
    if (opts.device == "cuda") {
        std::string why;
        if (!cuda::available(&why)) throw std::runtime_error("--device cuda: " + why);
        gpu_steps_ = opts.n_gpu_steps < 0 ? plan_.n_steps() : std::min(opts.n_gpu_steps, plan_.n_steps());
        if (gpu_steps_ > 0) {
            cuda::EngineOptions eo;
            eo.n_ctx = n_ctx_;
            eo.max_batch = s_.max_batch;
            eo.with_output = gpu_steps_ == plan_.n_steps();
            const std::vector<int> layers = plan_.layers();
            gpu_ = std::make_unique<cuda::Engine>(cuda_model(*model_, rope_factors_),
                                                  std::vector<int>(layers.begin(), layers.begin() + gpu_steps_), eo);
        }
    } else if (opts.device != "cpu") {
        throw std::invalid_argument("unknown device '" + opts.device + "' (expected cpu or cuda)");
    }
}

Forward::~Forward() = default;

const KVCache& Forward::kv_cache() const {
    if (!kv_) throw std::logic_error("this Forward has no cache of its own (own_cache = false)");
    return *kv_;
}

KVCache Forward::new_cache() const {
    return KVCache(plan_.n_steps(), n_ctx_, model_->config().kv_dim(), kv_type_);
}

void Forward::check_token(int32_t t) const {
    if (t < 0 || t >= model_->config().vocab_size)
        throw std::runtime_error("token id " + std::to_string(t) + " is outside the vocabulary of " +
                                 std::to_string(model_->config().vocab_size));
}

void Forward::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& f) const {
    team_->parallel_for(n, 1, f);
}

namespace {
// `count` items of `floats` floats each on the threads, in pieces of about 16K floats: f(first, end) over
// item indices. Up to one piece (a decode step's vectors) runs in one call, here.
template <class F>
void in_pieces(ThreadTeam& team, int64_t count, int64_t floats, F&& f) {
    team.parallel_for(count, std::max<int64_t>(1, 16384 / std::max<int64_t>(floats, 1)), f);
}

// An elementwise kernel over `rows` rows of n floats, each row split in whole 64-float blocks: every element
// takes the same (vector or tail) path as in one call over its own row, so the bits depend neither on the split
// nor on the rows beside it (a row of 172 floats ends in the same tail at any batch size). f(offset, length)
// over a run of blocks of one row.
template <class F>
void elementwise(ThreadTeam& team, int64_t rows, int64_t n, F&& f) {
    constexpr int64_t kBlock = 64;
    const int64_t per_row = (n + kBlock - 1) / kBlock;
    in_pieces(team, rows * per_row, kBlock, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1;) {
            const int64_t row = b / per_row, end = std::min(b1, (row + 1) * per_row);
            const int64_t i0 = (b - row * per_row) * kBlock, i1 = std::min(n, (end - row * per_row) * kBlock);
            f(row * n + i0, i1 - i0);
            b = end;
        }
    });
}
}  // namespace

void Forward::store_kv(KvType t, uint8_t* dst, const float* x, int n) {
    if (t == KvType::F16)
        K_.quantize_row[static_cast<int>(DType::F16)](x, dst, n);  // round to nearest even, as llama.cpp stores it
    else
        std::memcpy(dst, x, sizeof(float) * static_cast<size_t>(n));
}

void Forward::add(float* x, const float* y, int rows, int64_t n) {
    elementwise(*team_, rows, n, [&](int64_t i, int64_t m) { K_.add(x + i, y + i, m); });
}

void Forward::gated(float* hb, const float* hb2, int rows, int64_t n) {
    const auto fn = model_->config().ffn_gelu ? K_.geglu : K_.swiglu;
    elementwise(*team_, rows, n, [&](int64_t i, int64_t m) { fn(hb + i, hb2 + i, m); });
}

void Forward::matmul(const WeightView& w, const float* x, int B, float* y, bool same_x) {
    const DType vdt = dtype_traits(w.dtype).vec_dot_type;
    const int64_t n = w.cols(), rows = w.rows();
    const size_t xrb = dtype_row_bytes(vdt, n);
    uint8_t* xq = s_.xq.data();
    if (!(same_x && xq_of_.x == x && xq_of_.t == vdt && xq_of_.n == n && xq_of_.B == B)) {
        const QuantizeRowFn quantize = K_.quantize_row[static_cast<int>(vdt)];
        team_->for_each(B, [&](int64_t b) { quantize(x + b * n, xq + b * xrb, n); });
        xq_of_ = {x, vdt, n, B};
    }
    if (const void* packed = model_->packed(&w)) {  // row-interleaved copy made at load: split by row groups
        const MatmulPackedFn mp = K_.matmul_packed[static_cast<int>(w.dtype)];
        const int64_t P = K_.pack_rows, groups = rows / P;
        // At least 4 groups a task where there are enough for every thread, each group one sequential stream.
        // (Decode with one or two contiguous runs per thread instead measured the same: 1B Q4_0 / Q4_K tg64
        // within 1% on two Zen 4 threads.)
        const int64_t grain =
            std::max<int64_t>({1, groups / (8 * n_threads_), std::min<int64_t>(4, groups / n_threads_)});
        team_->parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
            mp(packed, n, g0 * P, g1 * P, xq, xrb, B, y, rows);
        });
        return;
    }
    const MatmulFn mm = K_.matmul[static_cast<int>(w.dtype)];
    // Row chunks: enough to balance the threads, large enough to amortise the activation reads.
    const int64_t grain = std::max<int64_t>(16, rows / (8 * n_threads_));
    team_->parallel_for(rows, grain,
                        [&](int64_t r0, int64_t r1) { mm(w.data, w.row_bytes, n, r0, r1, xq, xrb, B, y, rows); });
}

void Forward::rmsnorm_rows(float* out, const float* x, const WeightView& w, int B, int n) {
    const float eps = model_->config().rms_eps;
    const float* wt = reinterpret_cast<const float*>(w.data);
    // Rows on the threads: a row's bits do not depend on the split.
    in_pieces(*team_, B, n, [&](int64_t b0, int64_t b1) {
        for (int64_t b = b0; b < b1; ++b) K_.rmsnorm(out + b * n, x + b * n, wt, n, eps);
    });
}

void Forward::attention(const Step& step, int B) {
    const ModelConfig& c = model_->config();
    const int hd = c.head_dim, kv_dim = c.kv_dim(), q_dim = c.q_dim();
    const int group = c.n_heads / c.n_kv_heads;
    const float scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(hd));
    const int window = step.kind == LayerKind::SlidingWindow ? c.sliding_window : 0;
    // Each token's cache has its own element type (eval_sequences checks that they are this Forward's).
    if (K_.attention_group[static_cast<int>(kv_type_)] && hd % K_.attention_group_dims == 0) {
        // Jobs of (token, KV head, block of the query heads sharing it): a block reads each K/V row once. The block
        // size only shapes the work (a query's bits do not depend on it): the whole group, halved while there are
        // fewer than two jobs per thread (decode).
        const int threads = team_->size();
        int per = group;
        while (per > 1 && B * c.n_kv_heads * ((group + per - 1) / per) < 2 * threads) per = (per + 1) / 2;
        const int blocks = (group + per - 1) / per;
        team_->for_each(B * c.n_kv_heads * blocks, [&](int64_t job64) {
            const int job = static_cast<int>(job64);
            const int b = job / (c.n_kv_heads * blocks), kvh = job / blocks % c.n_kv_heads, blk = job % blocks;
            const int h0 = kvh * group + blk * per, nq = std::min(per, group - blk * per);
            const int p = pos_[b];
            KVCache& kv = *cache_[b];
            const int t0 = window > 0 ? std::max(0, p - window + 1) : 0;
            K_.attention_group[static_cast<int>(kv.type())](
                &s_.q[static_cast<size_t>(b) * q_dim + h0 * hd], hd, nq, kv.k(step.kv_slot, t0, kvh * hd), kv_dim,
                kv.v(step.kv_slot, t0, kvh * hd), kv_dim, p - t0 + 1, hd, scale,
                &s_.xb2[static_cast<size_t>(b) * q_dim + h0 * hd], hd);
        });
        return;
    }
    team_->for_each(B * c.n_heads, [&](int64_t job64) {
        const int job = static_cast<int>(job64);
        const int b = job / c.n_heads, h = job % c.n_heads;
        const int p = pos_[b];
        KVCache& kv = *cache_[b];
        const int t0 = window > 0 ? std::max(0, p - window + 1) : 0;
        const int kvh = h / group;
        K_.attention[static_cast<int>(kv.type())](&s_.q[static_cast<size_t>(b) * q_dim + h * hd],
                                                  kv.k(step.kv_slot, t0, kvh * hd), kv_dim,
                                                  kv.v(step.kv_slot, t0, kvh * hd), kv_dim, p - t0 + 1, hd, scale,
                                                  &s_.xb2[static_cast<size_t>(b) * q_dim + h * hd]);
    });
}

std::span<const float> Forward::eval(std::span<const int32_t> tokens, int pos, bool all_logits) {
    const ModelConfig& c = model_->config();
    const int n = static_cast<int>(tokens.size());
    if (n == 0) throw std::invalid_argument("eval: no tokens");
    if (pos < 0 || pos + n > n_ctx_)
        throw std::runtime_error("context overflow: " + std::to_string(pos + n) + " tokens do not fit the context of " +
                                 std::to_string(n_ctx_) + " (raise -c / --ctx-size)");
    for (int32_t t : tokens) check_token(t);
    if (!kv_) throw std::logic_error("eval: this Forward has no cache of its own (use eval_sequences)");
    if (all_logits) s_.logits.resize(static_cast<size_t>(n) * c.vocab_size);
    if (gpu_ && observer_) throw std::runtime_error("hidden-state analysis runs on the CPU only (drop --device cuda)");
    gpu_logits_ = nullptr;
    for (int done = 0; done < n; done += s_.max_batch) {
        const int b = std::min(s_.max_batch, n - done);
        for (int i = 0; i < b; ++i) pos_[i] = pos + done + i, cache_[i] = &*kv_;
        if (all_logits)
            eval_batch(tokens.data() + done, b, Logits::All,
                       s_.logits.data() + static_cast<size_t>(done) * c.vocab_size);
        else
            eval_batch(tokens.data() + done, b, done + b == n ? Logits::Last : Logits::None, s_.logits.data());
    }
    if (all_logits) return std::span<const float>(s_.logits.data(), static_cast<size_t>(n) * c.vocab_size);
    return std::span<const float>(gpu_logits_ ? gpu_logits_ : s_.logits.data(), static_cast<size_t>(c.vocab_size));
}

std::span<const float> Forward::eval_sequences(std::span<const SeqToken> batch) {
    const ModelConfig& c = model_->config();
    if (batch.empty()) throw std::invalid_argument("eval_sequences: no tokens");
    if (gpu_) throw std::runtime_error("batches of several sequences run on the CPU only");
    if (observer_) throw std::runtime_error("hidden-state analysis observes one sequence at a time");
    size_t n_logits = 0;
    for (const SeqToken& e : batch) {
        check_token(e.token);
        if (!e.cache || e.cache->n_slots() != plan_.n_steps() || e.cache->kv_dim() != c.kv_dim() ||
            e.cache->type() != kv_type_)
            throw std::runtime_error("eval_sequences: a cache that does not fit this plan (use new_cache)");
        if (e.pos < 0 || e.pos >= e.cache->n_ctx())
            throw std::runtime_error("context overflow: position " + std::to_string(e.pos) +
                                     " is outside its sequence's context of " +
                                     std::to_string(e.cache->n_ctx()));
        n_logits += e.logits ? 1 : 0;
    }
    s_.logits.resize(std::max<size_t>(1, n_logits) * static_cast<size_t>(c.vocab_size));
    const int n = static_cast<int>(batch.size());
    std::vector<int32_t> tokens(batch.size());
    size_t written = 0;  // logits rows so far
    for (int done = 0; done < n; done += s_.max_batch) {
        const int B = std::min(s_.max_batch, n - done);
        out_rows_.clear();
        for (int i = 0; i < B; ++i) {
            const SeqToken& e = batch[static_cast<size_t>(done + i)];
            tokens[static_cast<size_t>(i)] = e.token, pos_[i] = e.pos, cache_[i] = e.cache;
            if (e.logits) out_rows_.push_back(i);
        }
        eval_batch(tokens.data(), B, out_rows_.empty() ? Logits::None : Logits::Rows,
                   s_.logits.data() + written * c.vocab_size);
        written += out_rows_.size();
    }
    return std::span<const float>(s_.logits.data(), n_logits * static_cast<size_t>(c.vocab_size));
}

// One pass over B tokens, token b at position pos_[b] of the sequence whose cache is cache_[b]; writes the
// logits `which` asks for: (B, 1 or out_rows_.size(), vocab). The GPU takes one sequence: pos_[0] + b.
void Forward::eval_batch(const int32_t* tokens, int B, Logits which, float* logits) {
    const ModelConfig& c = model_->config();
    const ModelWeights& W = model_->weights();
    const int dim = c.dim, q_dim = c.q_dim(), kv_dim = c.kv_dim(), hid = c.hidden_dim;
    float* x = s_.x.data();
    const int pos = pos_[0];  // the first token's position (a single sequence's tokens follow it)

    // Embedding lookup (rows of any supported type), scaled where the architecture says so.
    const DequantizeRowFn deq = K_.dequantize_row[static_cast<int>(W.tok_embd->dtype)];
    for (int b = 0; b < B; ++b) {
        float* xr = x + static_cast<size_t>(b) * dim;
        deq(W.tok_embd->row(tokens[b]), xr, dim);
        if (c.embed_scale != 1.f)
            for (int i = 0; i < dim; ++i) xr[i] *= c.embed_scale;
    }
    if (observer_) observer_(0, x, B, pos);

    if (gpu_) {
        if (gpu_steps_ == plan_.n_steps()) {  // everything on the GPU, the output included
            if (which == Logits::None) {
                // The logits are not wanted, but the engine's last pass computes them for one token: cheap.
                gpu_->eval(x, B, pos, 1, nullptr);
            } else {
                const int n_out = which == Logits::All ? B : 1;
                const float* l = gpu_->eval(x, B, pos, n_out, nullptr);
                if (which == Logits::All)
                    std::memcpy(logits, l, sizeof(float) * static_cast<size_t>(n_out) * c.vocab_size);
                else
                    gpu_logits_ = l;
            }
            return;
        }
        gpu_->eval(x, B, pos, 0, x);  // the first gpu_steps_ steps; x comes back for the CPU's steps
    }

    for (int si = gpu_steps_; si < plan_.n_steps(); ++si) {
        const Step& step = plan_.steps[static_cast<size_t>(si)];
        const LayerWeights& L = *step.w;
        const float* factors = rope_factors_.empty() ? nullptr : rope_factors_.data();

        // ---- attention sublayer -------------------------------------------------------------------
        rmsnorm_rows(s_.xb.data(), x, *L.attn_norm, B, dim);
        matmul(*L.wq, s_.xb.data(), B, s_.q.data());
        matmul(*L.wk, s_.xb.data(), B, s_.k.data(), true);
        matmul(*L.wv, s_.xb.data(), B, s_.v.data(), true);
        // Per token (on the threads: every token's work is its own): biases, q/k norms, RoPE, into the cache.
        team_->parallel_for(B, 4, [&](int64_t b0, int64_t b1) {
            for (int b = static_cast<int>(b0); b < b1; ++b) {
                float* q = &s_.q[static_cast<size_t>(b) * q_dim];
                float* k = &s_.k[static_cast<size_t>(b) * kv_dim];
                float* v = &s_.v[static_cast<size_t>(b) * kv_dim];
                if (L.bq) K_.add(q, reinterpret_cast<const float*>(L.bq->data), q_dim);
                if (L.bk) K_.add(k, reinterpret_cast<const float*>(L.bk->data), kv_dim);
                if (L.bv) K_.add(v, reinterpret_cast<const float*>(L.bv->data), kv_dim);
                if (L.q_norm) {
                    const float* w = reinterpret_cast<const float*>(L.q_norm->data);
                    for (int h = 0; h < c.n_heads; ++h)
                        K_.rmsnorm(q + h * c.head_dim, q + h * c.head_dim, w, c.head_dim, c.rms_eps);
                }
                if (L.k_norm) {
                    const float* w = reinterpret_cast<const float*>(L.k_norm->data);
                    for (int h = 0; h < c.n_kv_heads; ++h)
                        K_.rmsnorm(k + h * c.head_dim, k + h * c.head_dim, w, c.head_dim, c.rms_eps);
                }
                K_.rope(q, c.n_heads, c.head_dim, c.rope_dim, pos_[b], L.rope_theta, L.rope_freq_scale,
                        factors, c.rope_neox);
                K_.rope(k, c.n_kv_heads, c.head_dim, c.rope_dim, pos_[b], L.rope_theta, L.rope_freq_scale,
                        factors, c.rope_neox);
                store_kv(cache_[b]->type(), cache_[b]->k(step.kv_slot, pos_[b]), k, kv_dim);
                store_kv(cache_[b]->type(), cache_[b]->v(step.kv_slot, pos_[b]), v, kv_dim);
            }
        });
        attention(step, B);
        matmul(*L.wo, s_.xb2.data(), B, s_.xb.data());
        if (L.post_attn_norm) rmsnorm_rows(s_.xb.data(), s_.xb.data(), *L.post_attn_norm, B, dim);
        add(x, s_.xb.data(), B, dim);

        // ---- feed-forward sublayer (gated: SwiGLU, or GeGLU for Gemma) ----------------------------
        rmsnorm_rows(s_.xb.data(), x, *L.ffn_norm, B, dim);
        matmul(*L.w_gate, s_.xb.data(), B, s_.hb.data());
        matmul(*L.w_up, s_.xb.data(), B, s_.hb2.data(), true);
        gated(s_.hb.data(), s_.hb2.data(), B, hid);
        matmul(*L.w_down, s_.hb.data(), B, s_.xb.data());
        if (L.post_ffn_norm) rmsnorm_rows(s_.xb.data(), s_.xb.data(), *L.post_ffn_norm, B, dim);
        add(x, s_.xb.data(), B, dim);
        if (observer_) observer_(step.kv_slot + 1, x, B, pos);  // kv_slot == the step's index
    }

    if (which == Logits::None) return;
    if (which == Logits::Rows) {  // the rows asked for, gathered in batch order: (out_rows_.size(), dim)
        for (size_t j = 0; j < out_rows_.size(); ++j)
            std::memcpy(&s_.xb[j * dim], x + static_cast<size_t>(out_rows_[j]) * dim, sizeof(float) * dim);
        return output_head(s_.xb.data(), static_cast<int>(out_rows_.size()), logits);
    }
    const int first = which == Logits::All ? 0 : B - 1;
    output_head(x + static_cast<size_t>(first) * dim, B - first, logits);
}

void Forward::output_head(const float* x, int n, float* logits) {
    const ModelWeights& W = model_->weights();
    rmsnorm_rows(s_.xb.data(), x, *W.output_norm, n, model_->config().dim);
    matmul(*W.output, s_.xb.data(), n, logits);
}

void Forward::logits_from_residual(const float* x, int n, float* logits) {
    if (n < 0) throw std::invalid_argument("logits_from_residual: negative row count");
    if (gpu_) throw std::runtime_error("the logit lens runs on the CPU path (drop --device cuda / -ngl)");
    const size_t dim = static_cast<size_t>(model_->config().dim);
    const size_t V = static_cast<size_t>(model_->config().vocab_size);
    for (int done = 0; done < n; done += s_.max_batch)  // s_.xb holds max_batch rows: larger inputs in pieces
        output_head(x + done * dim, std::min(s_.max_batch, n - done), logits + done * V);
}

}  // namespace strata
