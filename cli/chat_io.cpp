#include "cli/chat_io.h"

#include <histedit.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cwchar>
#include <filesystem>

#include "core/run/session.h"

namespace strata::cli {

namespace {

class EditLineReader : public LineReader {
  public:
    EditLineReader(const char* program, bool color, std::string history_path,
                   const std::atomic<bool>* interrupted)
        : color_(color), history_path_(std::move(history_path)), interrupted_(interrupted) {
        el_ = el_init(program, stdin, stdout, stderr);
        if (!el_) throw std::runtime_error("cannot start line editing (libedit el_init failed)");
        hist_ = history_init();
        history(hist_, &event_, H_SETSIZE, 1000);
        history(hist_, &event_, H_SETUNIQUE, 1);
        if (!history_path_.empty()) history(hist_, &event_, H_LOAD, history_path_.c_str());
        el_set(el_, EL_CLIENTDATA, this);
        el_set(el_, EL_PROMPT_ESC, &EditLineReader::prompt, '\1');  // \1 ... \1 brackets invisible escapes
        el_set(el_, EL_GETCFN, &EditLineReader::getc);
        el_set(el_, EL_EDITOR, "emacs");
        el_set(el_, EL_HIST, history, hist_);
        el_source(el_, nullptr);  // the user's ~/.editrc
    }
    ~EditLineReader() override {
        if (!history_path_.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(std::filesystem::path(history_path_).parent_path(), ec);
            history(hist_, &event_, H_SAVE, history_path_.c_str());
        }
        history_end(hist_);
        el_end(el_);
    }

    ReadResult read(bool continuation) override {
        const char* mark = continuation ? "." : ">";
        // libedit drops an escape bracket that ends the prompt: the space comes after the colour reset.
        prompt_ = color_ ? std::string("\1\033[1;32m\1") + mark + "\1\033[0m\1 " : std::string(mark) + " ";
        int count = 0;
        errno = 0;
        const char* line = el_gets(el_, &count);
        const bool interrupted = errno == EINTR || (interrupted_ && interrupted_->load());
        ReadResult r;
        if (line && count > 0) {
            r.line.assign(line, static_cast<size_t>(count));
        } else if (interrupted) {
            const LineInfo* typed = el_line(el_);  // Ctrl-C: what had been typed
            if (typed && typed->buffer && typed->lastchar > typed->buffer)
                r.line.assign(typed->buffer, static_cast<size_t>(typed->lastchar - typed->buffer));
        }
        if (interrupted)
            r.status = ReadStatus::Interrupted;
        else if (!line || count <= 0)
            return r;  // Eof
        else
            r.status = ReadStatus::Line;
        while (!r.line.empty() && (r.line.back() == '\n' || r.line.back() == '\r')) r.line.pop_back();
        return r;
    }

    void add_history(const std::string& entry) override {
        if (!entry.empty()) history(hist_, &event_, H_ENTER, entry.c_str());
    }

  private:
    static EditLineReader* self(EditLine* el) {
        void* p = nullptr;
        el_get(el, EL_CLIENTDATA, &p);
        return static_cast<EditLineReader*>(p);
    }
    static char* prompt(EditLine* el) { return const_cast<char*>(self(el)->prompt_.c_str()); }

    // libedit's own reader retries a read that a signal interrupted, so Ctrl-C would need pressing twice:
    // this one gives up (-1) when the interrupt flag is raised. Multibyte characters are decoded in the C
    // locale's character type (UTF-8); an invalid sequence becomes U+FFFD.
    static int getc(EditLine* el, wchar_t* out) {
        char bytes[MB_LEN_MAX];
        size_t n = 0;
        for (;;) {
            char byte;
            const ssize_t got = ::read(STDIN_FILENO, &byte, 1);
            if (got == 0) return 0;
            if (got < 0) {
                if (errno != EINTR) return -1;
                const std::atomic<bool>* flag = self(el)->interrupted_;
                if (flag && flag->load()) return -1;
                continue;
            }
            bytes[n++] = byte;
            std::mbstate_t state{};
            wchar_t wc = 0;
            const size_t k = std::mbrtowc(&wc, bytes, n, &state);
            if (k == static_cast<size_t>(-2) && n < sizeof bytes) continue;
            *out = k == static_cast<size_t>(-2) || k == static_cast<size_t>(-1) ? L'\uFFFD' : wc;
            return 1;
        }
    }

    bool color_;
    std::string history_path_;
    std::string prompt_;
    EditLine* el_ = nullptr;
    History* hist_ = nullptr;
    HistEvent event_{};
    const std::atomic<bool>* interrupted_;
};

class PlainReader : public LineReader {
  public:
    ~PlainReader() override { std::free(buf_); }
    ReadResult read(bool) override {
        errno = 0;
        const ssize_t n = ::getline(&buf_, &cap_, stdin);
        ReadResult r;
        if (n < 0) {
            r.status = errno == EINTR ? ReadStatus::Interrupted : ReadStatus::Eof;
            clearerr(stdin);
            return r;
        }
        r.status = ReadStatus::Line;
        r.line.assign(buf_, static_cast<size_t>(n));
        while (!r.line.empty() && (r.line.back() == '\n' || r.line.back() == '\r')) r.line.pop_back();
        return r;
    }
    void add_history(const std::string&) override {}

  private:
    char* buf_ = nullptr;
    size_t cap_ = 0;
};

void append_utf8(std::string& out, uint32_t c) {
    if (c < 0x80) {
        out += static_cast<char>(c);
    } else if (c < 0x800) {
        out += static_cast<char>(0xC0 | (c >> 6));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += static_cast<char>(0xE0 | (c >> 12));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (c >> 18));
        out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (c & 0x3F));
    }
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace

std::unique_ptr<LineReader> make_editline_reader(const char* program, bool color, std::string history_path,
                                                 const std::atomic<bool>* interrupted) {
    return std::make_unique<EditLineReader>(program, color, std::move(history_path), interrupted);
}

std::unique_ptr<LineReader> make_plain_reader() {
    return std::make_unique<PlainReader>();
}

std::string default_history_path() {
    if (const char* cache = std::getenv("STRATA_CACHE"); cache && *cache)
        return std::string(cache) + "/chat_history";
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/strata/chat_history";
    return "";
}

std::string unescape_c(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[i + 1];
        const char* simple = "n\nt\tr\r\\\\\"\"''a\ab\bf\fv\v";
        bool done = false;
        for (const char* p = simple; *p; p += 2) {
            if (*p == c) {
                out += p[1];
                ++i;
                done = true;
                break;
            }
        }
        if (done) continue;
        if (c >= '0' && c <= '7') {  // up to three octal digits
            int v = 0, n = 0;
            while (n < 3 && i + 1 + n < s.size() && s[i + 1 + n] >= '0' && s[i + 1 + n] <= '7')
                v = v * 8 + (s[i + 1 + n] - '0'), ++n;
            out += static_cast<char>(v & 0xFF);
            i += n;
            continue;
        }
        const int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
        if (digits > 0 && i + 1 + static_cast<size_t>(digits) < s.size()) {
            uint32_t v = 0;
            bool ok = true;
            for (int k = 0; k < digits; ++k) {
                const int h = hex_value(s[i + 2 + k]);
                if (h < 0) ok = false;
                v = v * 16 + static_cast<uint32_t>(h < 0 ? 0 : h);
            }
            if (ok && (c == 'x' || v <= 0x10FFFF)) {
                if (c == 'x')
                    out += static_cast<char>(v);
                else
                    append_utf8(out, v);
                i += 1 + static_cast<size_t>(digits);
                continue;
            }
        }
        out += s[i];  // unknown or incomplete: kept as written
    }
    return out;
}

int sanitize_utf8(std::string& s) {
    std::string out;
    int replaced = 0;
    const auto cont = [&](size_t k) { return k < s.size() && (static_cast<uint8_t>(s[k]) & 0xC0) == 0x80; };
    for (size_t i = 0; i < s.size();) {
        const uint8_t b = static_cast<uint8_t>(s[i]);
        size_t len = 0;
        uint32_t c = 0;
        if (b < 0x80)
            len = 1, c = b;
        else if ((b & 0xE0) == 0xC0)
            len = 2, c = b & 0x1F;
        else if ((b & 0xF0) == 0xE0)
            len = 3, c = b & 0x0F;
        else if ((b & 0xF8) == 0xF0)
            len = 4, c = b & 0x07;
        bool ok = len > 0;
        for (size_t k = 1; ok && k < len; ++k) {
            if (!cont(i + k))
                ok = false;
            else
                c = (c << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3F);
        }
        static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (ok && (c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))) ok = false;
        if (ok) {
            out.append(s, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            ++replaced;
            ++i;
            while (i < s.size() && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80 && len > 1) ++i, --len;
        }
    }
    s = std::move(out);
    return replaced;
}

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<Session*> g_generating{nullptr};

extern "C" void strata_on_sigint(int) {
    g_interrupted.store(true);
    if (Session* s = g_generating.load()) s->abort();
}

// While waiting for input, Ctrl-C must interrupt the read (no SA_RESTART); while generating, it only raises
// the abort flag and every system call carries on.
void set_sigint(bool restart_syscalls) {
    struct sigaction sa {};
    sa.sa_handler = strata_on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart_syscalls ? SA_RESTART : 0;
    sigaction(SIGINT, &sa, nullptr);
}

}  // namespace

void Interrupts::on_input() {
    set_sigint(/*restart_syscalls=*/false);
}
void Interrupts::generating(Session* s) {
    if (s) set_sigint(/*restart_syscalls=*/true);
    g_generating.store(s);
}
bool Interrupts::raised() { return g_interrupted.load(); }
void Interrupts::clear() { g_interrupted.store(false); }
const std::atomic<bool>* Interrupts::flag() { return &g_interrupted; }
void Interrupts::restore() {
    g_generating.store(nullptr);
    signal(SIGINT, SIG_DFL);
}

}  // namespace strata::cli
