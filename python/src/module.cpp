// strata_llm._strata: the extension module. The classes live in model.cpp, chat.cpp and analysis.cpp; this
// file holds the module, the sampler settings, the registry's report, system information and the multi-model
// programs' text logic (core/run/programs.h).
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include "core/analysis/draft_select.h"
#include "core/engine/plan.h"
#include "core/engine/sysinfo.h"
#include "core/run/programs.h"
#include "core/text/chat_template.h"
#include "python/src/binding.h"

namespace strata::python {
namespace {

void bind_sampler(nb::module_& m) {
    nb::class_<SamplerParams>(m, "SamplerParams")
        .def(
            "__init__",
            [](SamplerParams* p, nb::handle temperature, nb::handle top_k, nb::handle top_p, nb::handle min_p,
               nb::handle repeat_penalty, nb::handle repeat_last_n, nb::handle seed) {
                SessionSettings s;  // the engine's defaults where an argument is None
                apply_setting(s, "temp", "temperature", temperature);
                apply_setting(s, "top-k", "top_k", top_k);
                apply_setting(s, "top-p", "top_p", top_p);
                apply_setting(s, "min-p", "min_p", min_p);
                apply_setting(s, "repeat-penalty", "repeat_penalty", repeat_penalty);
                apply_setting(s, "repeat-last-n", "repeat_last_n", repeat_last_n);
                apply_setting(s, "seed", "seed", seed);
                new (p) SamplerParams(s.sampler);
            },
            nb::kw_only(), nb::arg("temperature").none() = nb::none(), nb::arg("top_k").none() = nb::none(),
            nb::arg("top_p").none() = nb::none(), nb::arg("min_p").none() = nb::none(),
            nb::arg("repeat_penalty").none() = nb::none(), nb::arg("repeat_last_n").none() = nb::none(),
            nb::arg("seed").none() = nb::none())
        .def_ro("temperature", &SamplerParams::temperature)
        .def_ro("top_k", &SamplerParams::top_k)
        .def_ro("top_p", &SamplerParams::top_p)
        .def_ro("min_p", &SamplerParams::min_p)
        .def_ro("repeat_penalty", &SamplerParams::repeat_penalty)
        .def_ro("repeat_last_n", &SamplerParams::repeat_last_n)
        .def_ro("seed", &SamplerParams::seed);
}

nb::list mapped_files() {
    nb::list out;
    for (const ModelRegistry::FileInfo& f : registry().files()) {
        nb::dict d;
        d["path"] = f.path;
        d["tokenizer_path"] = f.tokenizer_path;
        d["mapped_bytes"] = f.mapped_bytes;
        d["users"] = f.users;
        d["opens"] = f.opens;
        out.append(d);
    }
    return out;
}

nb::dict system_info() {
    nb::dict d;
    d["cpu_kernels"] = cpu_kernel_isa();
    d["rss_bytes"] = current_rss_bytes();
    d["peak_rss_bytes"] = peak_rss_bytes();
    std::string why;
    const bool gpu = gpu_available(&why);
    d["gpu"] = gpu ? gpu_info().name : std::string();
    d["gpu_unavailable_because"] = gpu ? std::string() : why;
    return d;
}

void bind_programs(nb::module_& m) {
    nb::module_ p = m.def_submodule("programs", "The multi-model programs' text logic (core/run/programs.h)");
    p.def("router_prompt", &router_prompt, nb::arg("domains"), nb::arg("question"));
    p.def(
        "choose_domain",
        [](const std::string& reply, const std::vector<std::string>& domains) {
            if (domains.empty()) throw std::invalid_argument("choose_domain: no domains");
            const RouterChoice c = choose_domain(reply, domains);
            return std::make_pair(c.index, c.reason);
        },
        nb::arg("reply"), nb::arg("domains"));
    p.attr("THINK_PREFIX") = kThinkPrefix;
    p.def("default_think_steps", &default_think_steps);
    p.attr("SUMMARIZER_SYSTEM") = kSummarizerSystem;
    p.def("summarizer_prompt", &summarizer_prompt, nb::arg("question"), nb::arg("thinking"));
}

}  // namespace
}  // namespace strata::python

NB_MODULE(_strata, m) {
    using namespace strata::python;
    m.doc() = "strata's engine (C++), bound with nanobind; use it through the strata_llm package";
    m.attr("__version__") = STRATA_VERSION;
    register_errors(m);
    bind_sampler(m);
    bind_model(m);
    bind_chat(m);
    bind_analysis(m);
    bind_programs(m);
    m.def("mapped_files", &mapped_files);
    m.def("system_info", &system_info);
    m.def("compact_layer_list", &strata::compact_layer_list, nb::arg("layers"));
    m.def("chat_templates", [] { return strata::ChatTemplate::names(); });
    m.def("builtin_calibration_text", [] { return std::string(strata::builtin_calibration_text()); });
}
