#include "core/analysis/lens.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>

#include "core/text/tokenizer.h"

namespace strata {

namespace {

// A row of logits as log-probabilities: logp_i = l_i - lse.
double log_sum_exp(const float* l, int V) {
    const float m = *std::max_element(l, l + V);
    double s = 0;
    for (int i = 0; i < V; ++i) s += std::exp(static_cast<double>(l[i]) - m);
    return m + std::log(s);
}

// The summary of one lens row against the final distribution (and a reference's, when given).
//   final_p (V) the final probabilities, final_logp (V) their logs; ref_p / ref_logp likewise or null.
LensCell summarise(const float* l, int V, int top_k, int position, int32_t target, const double* final_p,
                   const double* final_logp, const double* ref_p, const double* ref_logp) {
    LensCell c;
    c.position = position;
    c.target = target;
    const double lse = log_sum_exp(l, V);
    double entropy = 0, kl = 0, kl_ref = 0;
    int above = 0;
    const float lt = l[target];
    for (int i = 0; i < V; ++i) {
        const double logp = l[i] - lse, p = std::exp(logp);
        if (p > 0) entropy -= p * logp;
        if (final_p[i] > 0) kl += final_p[i] * (final_logp[i] - logp);
        if (ref_p && ref_p[i] > 0) kl_ref += ref_p[i] * (ref_logp[i] - logp);
        above += l[i] > lt;
    }
    c.entropy = entropy;
    c.kl = std::max(0.0, kl);  // >= 0 in exact arithmetic; rounding can leave -1e-17 at the last step
    if (ref_p) c.kl_reference = std::max(0.0, kl_ref);
    c.target_rank = above + 1;
    c.target_prob = static_cast<float>(std::exp(lt - lse));
    std::vector<int32_t> ids(static_cast<size_t>(V));
    std::iota(ids.begin(), ids.end(), 0);
    const auto by_logit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
    std::partial_sort(ids.begin(), ids.begin() + top_k, ids.end(), by_logit);
    for (int k = 0; k < top_k; ++k)
        c.top.push_back({ids[static_cast<size_t>(k)],
                         static_cast<float>(std::exp(l[ids[static_cast<size_t>(k)]] - lse))});
    return c;
}

// Probabilities and their logs (rows, V) of logits (rows, V), in double.
void to_probs(const float* logits, int rows, int V, std::vector<double>& p, std::vector<double>& logp) {
    p.resize(static_cast<size_t>(rows) * V);
    logp.resize(p.size());
    for (int r = 0; r < rows; ++r) {
        const float* l = logits + static_cast<size_t>(r) * V;
        const double lse = log_sum_exp(l, V);
        for (int i = 0; i < V; ++i) {
            const size_t j = static_cast<size_t>(r) * V + i;
            logp[j] = l[i] - lse;
            p[j] = std::exp(logp[j]);
        }
    }
}

std::vector<double> mean_of(const std::vector<LensStep>& steps, double LensCell::*field) {
    std::vector<double> m;
    for (const LensStep& s : steps) {
        double sum = 0;
        for (const LensCell& c : s.cells) sum += c.*field;
        m.push_back(s.cells.empty() ? 0 : sum / static_cast<double>(s.cells.size()));
    }
    return m;
}

}  // namespace

std::vector<double> LensReport::mean_kl() const {
    return mean_of(steps, &LensCell::kl);
}
std::vector<double> LensReport::mean_kl_reference() const {
    return mean_of(steps, &LensCell::kl_reference);
}

LensReport run_lens(const std::shared_ptr<const Model>& model, const Plan& plan,
                    std::span<const int32_t> tokens, const LensOptions& o) {
    const ModelConfig& c = model->config();
    const int V = c.vocab_size, dim = c.dim, n = static_cast<int>(tokens.size()), S = plan.n_steps();
    if (n == 0) throw std::invalid_argument("lens: the prompt has no tokens");
    if (o.top_k < 1 || o.top_k > V)
        throw std::invalid_argument("lens: --top-k must be in [1, " + std::to_string(V) +
                                    "] (the vocabulary)");
    if (o.fwd.device != "cpu")
        throw std::invalid_argument(
            "the logit lens runs on the CPU path: drop --device cuda / -ngl (the GPU "
            "forward keeps every step's residual stream on the device)");
    ForwardOptions fo = o.fwd;
    if (fo.n_ctx == 0) fo.n_ctx = n;
    Forward f(model, plan, fo);

    LensReport r;
    r.spec = plan.spec;
    r.tokens.assign(tokens.begin(), tokens.end());
    for (int p = o.all_positions ? 0 : n - 1; p < n; ++p) r.positions.push_back(p);
    const int P = static_cast<int>(r.positions.size()), first = r.positions.front();
    if (!o.reference_states.empty() && o.reference_states.size() != static_cast<size_t>(P) * dim)
        throw std::invalid_argument("lens: the reference states do not match the reported positions");

    // states[s]: (P, dim) the residual stream after step s at the reported positions.
    std::vector<float> states(static_cast<size_t>(S) * P * dim);
    f.set_state_observer([&](int state, const float* x, int B, int pos) {
        if (state == 0) return;  // the embeddings: no step's output
        for (int b = std::max(0, first - pos); b < B; ++b)
            std::memcpy(&states[(static_cast<size_t>(state - 1) * P + (pos + b - first)) * dim],
                        x + static_cast<size_t>(b) * dim, sizeof(float) * dim);
    });
    f.eval(tokens, 0, false);
    f.set_state_observer({});
    r.final_states.assign(states.end() - static_cast<ptrdiff_t>(P) * dim, states.end());

    r.steps.resize(static_cast<size_t>(S));
    for (int s = 0; s < S; ++s) {
        r.steps[static_cast<size_t>(s)].step = s;
        r.steps[static_cast<size_t>(s)].layer = plan.steps[static_cast<size_t>(s)].file_layer;
        r.steps[static_cast<size_t>(s)].cells.resize(static_cast<size_t>(P));
    }
    // Positions in chunks whose probabilities (chunk, V) in double stay within ~32 MiB per buffer.
    const int chunk = std::clamp((1 << 22) / V, 1, 64);
    std::vector<float> final_logits(static_cast<size_t>(chunk) * V), ref_logits, logits(final_logits.size());
    std::vector<double> final_p, final_logp, ref_p, ref_logp;
    tbb::task_arena arena(f.n_threads());
    for (int p0 = 0; p0 < P; p0 += chunk) {
        const int rows = std::min(chunk, P - p0);
        auto state_rows = [&](const float* base, int s) {
            return base + (static_cast<size_t>(s) * P + p0) * dim;
        };
        f.logits_from_residual(state_rows(states.data(), S - 1), rows, final_logits.data());
        to_probs(final_logits.data(), rows, V, final_p, final_logp);
        if (!o.reference_states.empty()) {
            ref_logits.resize(final_logits.size());
            f.logits_from_residual(state_rows(o.reference_states.data(), 0), rows, ref_logits.data());
            to_probs(ref_logits.data(), rows, V, ref_p, ref_logp);
        }
        for (int s = 0; s < S; ++s) {
            const float* l = final_logits.data();
            if (s < S - 1) {
                f.logits_from_residual(state_rows(states.data(), s), rows, logits.data());
                l = logits.data();
            }
            arena.execute([&] {
                tbb::parallel_for(0, rows, [&](int i) {
                    const size_t off = static_cast<size_t>(i) * V;
                    const float* fl = final_logits.data() + off;
                    const int32_t target = static_cast<int32_t>(std::max_element(fl, fl + V) - fl);
                    r.steps[static_cast<size_t>(s)].cells[static_cast<size_t>(p0 + i)] =
                        summarise(l + off, V, o.top_k, r.positions[static_cast<size_t>(p0 + i)], target,
                                  &final_p[off], &final_logp[off], ref_p.empty() ? nullptr : &ref_p[off],
                                  ref_p.empty() ? nullptr : &ref_logp[off]);
                });
            });
            if (o.on_row)
                for (int i = 0; i < rows; ++i) {
                    const LensStep& st = r.steps[static_cast<size_t>(s)];
                    o.on_row({s, st.layer, r.positions[static_cast<size_t>(p0 + i)],
                              state_rows(states.data(), s) + static_cast<size_t>(i) * dim,
                              l + static_cast<size_t>(i) * V, &st.cells[static_cast<size_t>(p0 + i)]});
                }
        }
    }
    return r;
}

namespace {

nlohmann::json steps_json(const Tokenizer& tok, const LensReport& r) {
    auto text = [&](int32_t id) { return tok.token_to_piece(id); };
    nlohmann::json steps = nlohmann::json::array();
    const std::vector<double> mean_kl = r.mean_kl();
    for (const LensStep& s : r.steps) {
        nlohmann::json cells = nlohmann::json::array();
        for (const LensCell& c : s.cells) {
            nlohmann::json top = nlohmann::json::array();
            for (const LensToken& t : c.top)
                top.push_back({{"id", t.id}, {"text", text(t.id)}, {"prob", t.prob}});
            nlohmann::json cell = {{"position", c.position},
                                   {"top", top},
                                   {"target",
                                    {{"id", c.target},
                                     {"text", text(c.target)},
                                     {"rank", c.target_rank},
                                     {"prob", c.target_prob}}},
                                   {"entropy", c.entropy},
                                   {"kl", c.kl}};
            if (c.kl_reference >= 0) cell["kl_reference"] = c.kl_reference;
            cells.push_back(cell);
        }
        steps.push_back({{"step", s.step},
                         {"layer", s.layer},
                         {"mean_kl", mean_kl[static_cast<size_t>(s.step)]},
                         {"positions", cells}});
    }
    return steps;
}

}  // namespace

std::string lens_json(const Model& model, const LensReport& r, const LensReport* reference) {
    const Tokenizer& tok = model.tokenizer();
    nlohmann::json tokens = nlohmann::json::array();
    for (int32_t t : r.tokens) tokens.push_back({{"id", t}, {"text", tok.token_to_piece(t)}});
    const int top_k =
        r.steps.empty() || r.steps[0].cells.empty() ? 0 : static_cast<int>(r.steps[0].cells[0].top.size());
    nlohmann::json j = {{"model", model.config().name.empty() ? model.file().path : model.config().name},
                        {"layer_spec", r.spec},
                        {"n_steps", r.steps.size()},
                        {"top_k", top_k},
                        {"tokens", tokens},
                        {"positions", r.positions},
                        {"steps", steps_json(tok, r)}};
    if (reference)
        j["reference"] = {{"layer_spec", reference->spec},
                          {"n_steps", reference->steps.size()},
                          {"steps", steps_json(tok, *reference)}};
    return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace strata
