// GGUF reader and writer: round trips, and every kind of broken file gives one clear error.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "core/engine/forward.h"
#include "core/engine/model.h"
#include "core/engine/plan.h"
#include "loaders/gguf_writer.h"
#include "loaders/model_file.h"
#include "test_util.h"

using namespace strata;
using namespace strata::test;

namespace {

// A tiny valid GGUF: a few metadata values of every type and two tensors.
std::vector<uint8_t> tiny_gguf() {
    static std::vector<float> a(64 * 3), b(32);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i) * 0.5f;
    for (size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i);
    GGUFWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("test.u32", 7);
    w.add_i32("test.i32", -7);
    w.add_u64("test.u64", 1ull << 40);
    w.add_f32("test.f32", 1.5f);
    w.add_bool("test.bool", true);
    w.add_string_array("test.strs", {"a", "bc", ""});
    w.add_f32_array("test.f32s", {1.f, 2.f, 3.f});
    w.add_i32_array("test.i32s", {4, -5});
    w.add_tensor("a", DType::F32, {64, 3}, a.data(), a.size() * 4);
    w.add_tensor("b", DType::F32, {32}, b.data(), b.size() * 4);
    return w.bytes();
}

ModelFile parse(std::vector<uint8_t> bytes) { return read_gguf(MappedFile::from_bytes(std::move(bytes), "test.gguf")); }

std::string parse_error(std::vector<uint8_t> bytes) {
    try {
        parse(std::move(bytes));
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

// Offset of the first tensor info (just after the metadata) in tiny_gguf(): found by searching the name.
size_t find(const std::vector<uint8_t>& b, const std::string& s) {
    for (size_t i = 0; i + s.size() <= b.size(); ++i)
        if (std::memcmp(b.data() + i, s.data(), s.size()) == 0) return i;
    return std::string::npos;
}

}  // namespace

TEST(Gguf, RoundTripsEveryValueType) {
    ModelFile f = parse(tiny_gguf());
    EXPECT_EQ(f.format, "GGUF v3");
    EXPECT_EQ(f.meta.get_string("general.architecture"), "llama");
    EXPECT_EQ(f.meta.get_int("test.u32"), 7);
    EXPECT_EQ(f.meta.get_int("test.i32"), -7);
    EXPECT_EQ(f.meta.get_int("test.u64"), int64_t(1) << 40);
    EXPECT_FLOAT_EQ(f.meta.get_float("test.f32"), 1.5f);
    EXPECT_TRUE(f.meta.get_bool("test.bool"));
    ASSERT_EQ(f.meta.get_string_array("test.strs").size(), 3u);
    EXPECT_EQ(f.meta.get_string_array("test.strs")[1], "bc");
    EXPECT_EQ(f.meta.get_float_array("test.f32s"), (std::vector<float>{1.f, 2.f, 3.f}));
    EXPECT_EQ(f.meta.get_int_array("test.i32s"), (std::vector<int64_t>{4, -5}));
    ASSERT_EQ(f.tensors.size(), 2u);
    const WeightView* a = f.find_tensor("a");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->cols(), 64);
    EXPECT_EQ(a->rows(), 3);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a->data) % 32, 0u);
    float v;
    std::memcpy(&v, a->row(2) + 4 * 5, 4);
    EXPECT_EQ(v, (2 * 64 + 5) * 0.5f);
    EXPECT_THROW(f.meta.get_int("test.f32"), std::runtime_error);
    EXPECT_THROW(f.meta.get_string("missing.key"), std::runtime_error);
}

TEST(Gguf, ReadsTheRealStoriesFile) {
    const std::string path = shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    ModelFile f = load_model_file(path);
    EXPECT_EQ(f.tensors.size(), 48u);
    EXPECT_EQ(f.meta.get_int("llama.block_count"), 5);
    EXPECT_EQ(f.data_offset, 14176u);
    // The writer reproduces the file's structure: re-reading its output gives the same tensors.
    GGUFWriter w(f.alignment);
    w.copy_metadata(f.meta);
    for (const WeightView& t : f.tensors)
        w.add_tensor(t.name, t.dtype, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
    ModelFile g = parse(w.bytes());
    ASSERT_EQ(g.tensors.size(), f.tensors.size());
    for (size_t i = 0; i < f.tensors.size(); ++i) {
        EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
        EXPECT_EQ(0, std::memcmp(g.tensors[i].data, f.tensors[i].data, f.tensors[i].nbytes));
    }
}

TEST(GgufBadInput, TruncatedAnywhereIsAnErrorNotACrash) {
    const std::vector<uint8_t> good = tiny_gguf();
    for (size_t n = 0; n < good.size(); n += (n < 200 ? 1 : 7)) {
        std::vector<uint8_t> b(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_FALSE(parse_error(b).empty()) << "truncated to " << n << " bytes was accepted";
    }
}

TEST(GgufBadInput, WrongMagic) {
    auto b = tiny_gguf();
    b[0] = 'X';
    EXPECT_NE(parse_error(b).find("bad magic"), std::string::npos);
}

TEST(GgufBadInput, UnsupportedVersion) {
    auto b = tiny_gguf();
    b[4] = 9;
    EXPECT_NE(parse_error(b).find("unsupported GGUF version 9"), std::string::npos);
    b[4] = 1;
    EXPECT_NE(parse_error(b).find("version 1"), std::string::npos);
}

TEST(GgufBadInput, AbsurdCounts) {
    auto b = tiny_gguf();
    const uint64_t huge = 1ull << 60;
    auto t = b;
    std::memcpy(t.data() + 8, &huge, 8);  // tensor count
    EXPECT_NE(parse_error(t).find("tensor count"), std::string::npos);
    t = b;
    std::memcpy(t.data() + 16, &huge, 8);  // metadata count
    EXPECT_NE(parse_error(t).find("metadata count"), std::string::npos);
    t = b;
    std::memcpy(t.data() + 24, &huge, 8);  // first key's length
    EXPECT_NE(parse_error(t).find("absurd length"), std::string::npos);
    // The string array's element count
    t = b;
    const size_t at = find(t, "test.strs") + 9 + 4 + 4;
    std::memcpy(t.data() + at, &huge, 8);
    EXPECT_NE(parse_error(t).find("strings, more than the file can hold"), std::string::npos);
}

TEST(GgufBadInput, UnknownTensorType) {
    auto b = tiny_gguf();
    // tensor "b": name (8 + 1), n_dims (4), dims (8), then the type
    const size_t at = find(b, std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9 + 4 + 8;
    const uint32_t bad = 77;
    std::memcpy(b.data() + at, &bad, 4);
    EXPECT_NE(parse_error(b).find("unknown type id 77"), std::string::npos);
}

TEST(GgufBadInput, TensorDataPastEndOfFile) {
    auto b = tiny_gguf();
    const size_t at = find(b, std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9 + 4 + 8 + 4;
    const uint64_t off = 1 << 20;
    std::memcpy(b.data() + at, &off, 8);
    EXPECT_NE(parse_error(b).find("runs past the end of the file"), std::string::npos);
}

TEST(GgufBadInput, MisalignedOffsetAndBadDims) {
    auto b = tiny_gguf();
    const size_t info = find(b, std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9;
    auto t = b;
    const uint64_t off = 3;
    std::memcpy(t.data() + info + 4 + 8 + 4, &off, 8);
    EXPECT_NE(parse_error(t).find("not aligned"), std::string::npos);
    t = b;
    const uint32_t dims = 9;
    std::memcpy(t.data() + info, &dims, 4);
    EXPECT_NE(parse_error(t).find("dimensions"), std::string::npos);
}

TEST(GgufBadInput, RandomByteFlipsNeverCrash) {
    const std::vector<uint8_t> good = tiny_gguf();
    uint32_t seed = 12345;
    for (int trial = 0; trial < 3000; ++trial) {
        auto b = good;
        for (int k = 0; k < 4; ++k) {
            seed = seed * 1664525u + 1013904223u;
            b[(seed >> 8) % b.size()] = static_cast<uint8_t>(seed >> 24);
        }
        try {
            parse(b);
        } catch (const std::runtime_error&) {
        }
    }
    SUCCEED();
}

// Binding: a missing tensor or a wrong shape names the tensor, expected and actual.
TEST(GgufBadInput, MissingTensorAndShapeMismatchAreNamed) {
    const std::string path = shared_model("stories260K.gguf");
    STRATA_REQUIRE_FILE(path);
    ModelFile f = load_model_file(path);
    auto rewrite = [&](const std::string& drop, const std::string& reshape) {
        GGUFWriter w(f.alignment);
        w.copy_metadata(f.meta);
        for (const WeightView& t : f.tensors) {
            if (t.name == drop) continue;
            std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
            if (t.name == reshape) std::swap(ne[0], ne[1]);
            w.add_tensor(t.name, t.dtype, ne, t.data, t.nbytes);
        }
        return Model::from_file(read_gguf(MappedFile::from_bytes(w.bytes(), "rewritten.gguf")));
    };
    try {
        rewrite("blk.3.ffn_up.weight", "");
        FAIL() << "missing tensor accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("'blk.3.ffn_up.weight' is missing"), std::string::npos) << e.what();
    }
    try {
        rewrite("", "blk.1.ffn_gate.weight");
        FAIL() << "wrong shape accepted";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("'blk.1.ffn_gate.weight' has shape [172, 64], expected [64, 172]"),
                  std::string::npos)
            << e.what();
    }
}

// The CLI turns each broken file into one error line and a non-zero exit.
TEST(GgufBadInput, CliPrintsOneLineAndExitsNonZero) {
    const std::vector<uint8_t> good = tiny_gguf();
    struct Case {
        std::string name;
        std::vector<uint8_t> bytes;
    };
    std::vector<Case> cases;
    cases.push_back({"truncated", std::vector<uint8_t>(good.begin(), good.begin() + 40)});
    auto magic = good;
    magic[1] = 'X';
    cases.push_back({"magic", magic});
    auto version = good;
    version[4] = 4;
    cases.push_back({"version", version});
    cases.push_back({"valid-but-no-model", good});  // arch llama without its hyperparameters
    cases.push_back({"empty", {}});
    const size_t info_b = find(good, std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9;
    auto dtype = good;
    const uint32_t bad_type = 77;
    std::memcpy(dtype.data() + info_b + 4 + 8, &bad_type, 4);
    cases.push_back({"unknown-dtype", dtype});
    auto past_end = good;
    const uint64_t far = 1 << 20;
    std::memcpy(past_end.data() + info_b + 4 + 8 + 4, &far, 8);
    cases.push_back({"data-past-eof", past_end});
    auto absurd = good;
    const uint64_t huge = 1ull << 60;
    std::memcpy(absurd.data() + 8, &huge, 8);
    cases.push_back({"absurd-count", absurd});
    if (std::filesystem::exists(shared_model("stories260K.gguf"))) {
        ModelFile f = load_model_file(shared_model("stories260K.gguf"));
        for (const std::string which : {"missing", "shape"}) {
            GGUFWriter w(f.alignment);
            w.copy_metadata(f.meta);
            for (const WeightView& t : f.tensors) {
                if (which == "missing" && t.name == "blk.2.attn_v.weight") continue;
                std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
                if (which == "shape" && t.name == "blk.2.ffn_down.weight") std::swap(ne[0], ne[1]);
                w.add_tensor(t.name, t.dtype, ne, t.data, t.nbytes);
            }
            cases.push_back({"tensor-" + which, w.bytes()});
        }
    }
    for (const Case& c : cases) {
        const std::string path = temp_path("bad-" + c.name + ".gguf");
        write_bytes(path, c.bytes);
        CliResult r = run_cli("show -m " + path);
        EXPECT_NE(r.exit_code, 0) << c.name;
        EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << c.name << ": " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.name << ": " << r.err;
    }
    CliResult r = run_cli("show -m /nonexistent/model.gguf");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
}

// Issue 10's resource limits: files that claim huge strings, arrays, tensors or models, and a context larger
// than memory, are refused from the bytes that are there, before anything of the claimed size is allocated.
// Proven in a child process whose address space is capped 256 MiB above what it already uses: an attempt to
// allocate what the file claims would throw std::bad_alloc there (exit 3) instead of the one-line error.
// (Skipped under AddressSanitizer, which reserves terabytes of shadow memory up front.)
TEST(GgufBadInput, HugeClaimsAreRefusedBeforeAllocating) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "address-space limits do not mix with ASan";
#endif
    STRATA_REQUIRE_FILE(shared_model("stories260K.gguf"));
    auto stories = Model::load(shared_model("stories260K.gguf"));  // mapped before the cap
    std::vector<std::vector<uint8_t>> files;
    {  // a tensor of 2^20 x 2^20 floats (4 TiB) in a tiny file, and one whose size overflows 64 bits
        for (uint64_t ne1 : {1ull << 20, 1ull << 62}) {
            auto b = tiny_gguf();
            const size_t info = find(b, std::string("\x01\0\0\0\0\0\0\0b", 9)) + 9;
            const uint64_t ne0 = 1ull << 20;
            const uint32_t dims = 2;
            // tensor "b" becomes 2-D: rewrite n_dims and splice in a second dimension
            std::memcpy(b.data() + info, &dims, 4);
            std::memcpy(b.data() + info + 4, &ne0, 8);
            b.insert(b.begin() + static_cast<long>(info + 12), reinterpret_cast<const uint8_t*>(&ne1),
                     reinterpret_cast<const uint8_t*>(&ne1) + 8);
            files.push_back(b);
        }
        auto b = tiny_gguf();  // the first key claims 512 MiB of text
        const uint64_t len = 512ull << 20;
        std::memcpy(b.data() + 24, &len, 8);
        files.push_back(b);
        GGUFWriter w;  // a vocabulary of 2^40 tokens and a model of 2^20 layers, in a few hundred bytes
        w.add_string("general.architecture", "llama");
        w.add_u64("llama.block_count", 1ull << 20);
        w.add_u64("llama.embedding_length", 1ull << 40);
        w.add_u64("llama.vocab_size", 1ull << 40);
        w.add_string_array("tokenizer.ggml.tokens", {"a", "b"});
        auto v = w.bytes();
        const size_t at = find(v, "tokenizer.ggml.tokens") + 21 + 4 + 4;
        const uint64_t n = 1ull << 40;
        std::memcpy(v.data() + at, &n, 8);
        files.push_back(w.bytes());
        files.push_back(v);
    }
    std::vector<uint8_t> ckpt(28 + 64, 0);  // llama2.c: dim 2^20, 32 layers, vocab 2^20 in 92 bytes
    const int32_t header[7] = {1 << 20, 1 << 22, 32, 8, 8, 1 << 20, 1 << 20};
    std::memcpy(ckpt.data(), header, sizeof header);

    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        long pages = 0;
        if (FILE* f = std::fopen("/proc/self/statm", "r")) {
            if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
            std::fclose(f);
        }
        const rlim_t cap = static_cast<rlim_t>(pages) * static_cast<rlim_t>(sysconf(_SC_PAGESIZE)) + (256ull << 20);
        const rlimit lim{cap, cap};
        if (pages == 0 || setrlimit(RLIMIT_AS, &lim) != 0) _exit(2);
        int refused = 0;
        auto expect_refused = [&](auto&& fn) {
            try {
                fn();
            } catch (const std::bad_alloc&) {
                std::fprintf(stderr, "claim #%d was allocated\n", refused);
                _exit(3);
            } catch (const std::exception&) {
                ++refused;
            }
        };
        for (const auto& f : files)
            expect_refused([&] { Model::from_file(read_gguf(MappedFile::from_bytes(f, "huge.gguf"))); });
        expect_refused([&] {
            read_llama2c(MappedFile::from_bytes(ckpt, "huge.bin"), MappedFile::from_bytes(std::vector<uint8_t>(8, 0)));
        });
        expect_refused([&] {  // a context of 2^26 tokens: an 80 GiB KV cache for stories260K
            ForwardOptions fo;
            fo.n_ctx = 1 << 26;
            Forward fwd(stories, make_plan(*stories), fo);
        });
        _exit(refused == static_cast<int>(files.size()) + 2 ? 0 : 4);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "2: could not cap the address space, 3: something allocated what a file "
                                         "claimed (std::bad_alloc), 4: a huge claim was accepted";
}
