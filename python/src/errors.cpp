// The registry, the exception translator and the small conversions every part of the module uses.
#include <Python.h>

#include <exception>
#include <new>

#include "python/src/binding.h"

namespace strata::python {

ModelRegistry& registry() {
    static ModelRegistry r;
    return r;
}

std::shared_ptr<const Model> open_model(const std::string& path, const std::string& tokenizer_path) {
    if (path.empty()) throw LoadError("no model path given");
    try {
        return registry().open(path, tokenizer_path);
    } catch (const std::bad_alloc&) {
        throw LoadError("out of memory while loading '" + path + "'");
    } catch (const std::exception& e) {
        throw LoadError(e.what());
    }
}

namespace {

// The engine's words for a context that cannot hold what it is asked to (Forward::eval, Session's overflow
// policies): those runtime errors are ContextOverflowErrors.
bool says_context_is_full(std::string_view msg) {
    for (std::string_view start : {"context overflow", "context full", "message too long"})
        if (msg.substr(0, start.size()) == start) return true;
    return false;
}

void raise(const char* name, const char* msg) {
    // strata_llm/errors.py defines the classes: raising them from here keeps one definition (and its docs).
    nb::object cls = nb::module_::import_("strata_llm.errors").attr(name);
    PyErr_SetString(cls.ptr(), msg);
}

void translate(const std::exception_ptr& p, void*) {
    try {
        std::rethrow_exception(p);
    } catch (const LoadError& e) {
        raise("ModelLoadError", e.what());
    } catch (const SpecError& e) {
        raise("LayerSpecError", e.what());
    } catch (const ContextOverflow& e) {
        raise("ContextOverflowError", e.what());
    } catch (const std::invalid_argument& e) {
        PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const std::runtime_error& e) {
        raise(says_context_is_full(e.what()) ? "ContextOverflowError" : "StrataError", e.what());
    }
    // Anything else (bad_alloc, out_of_range, ...) goes on to nanobind's own translation.
}

}  // namespace

void register_errors(nb::module_&) {
    nb::register_exception_translator(translate);
}

void check_signals() {
    if (PyErr_CheckSignals() != 0) throw nb::python_error();
}

nb::str utf8_str(std::string_view s) {
    PyObject* o = PyUnicode_DecodeUTF8(s.data(), static_cast<Py_ssize_t>(s.size()), "replace");
    if (!o) throw nb::python_error();
    return nb::steal<nb::str>(o);
}

void apply_setting(SessionSettings& s, std::string_view key, std::string_view argument, nb::handle value) {
    if (value.is_none()) return;
    if (PyBool_Check(value.ptr()) && session_setting_rule(key))
        throw std::invalid_argument(std::string(argument) + ": a number, not " + nb::str(value).c_str());
    try {
        apply_session_setting(s, key, nb::str(value).c_str());
    } catch (const std::invalid_argument& e) {
        const std::string msg = e.what(), flag = "--" + std::string(key);
        throw std::invalid_argument(msg.rfind(flag, 0) == 0 ? std::string(argument) + msg.substr(flag.size())
                                                            : msg);
    }
}

}  // namespace strata::python
