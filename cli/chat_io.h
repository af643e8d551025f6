// Terminal input for `strata chat`: libedit line editing and history on a TTY, plain lines otherwise; and the
// small text helpers the chat front end needs.
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <string_view>

namespace strata {
class Session;
}

namespace strata::cli {

enum class ReadStatus {
    Line,         // a line (without its newline)
    Eof,          // end of input (Ctrl-D at an empty prompt)
    Interrupted,  // Ctrl-C while waiting for input (line: what had been typed, if the reader knows)
};
struct ReadResult {
    ReadStatus status = ReadStatus::Eof;
    std::string line;
};

class LineReader {
  public:
    virtual ~LineReader() = default;
    // continuation: the prompt of a further line of a multi-line message.
    virtual ReadResult read(bool continuation) = 0;
    virtual void add_history(const std::string& entry) = 0;
};

// libedit (emacs key bindings, ~/.editrc, history kept in history_path when given) with a coloured prompt.
// `interrupted` is the flag the SIGINT handler raises: a read it interrupts ends with
// ReadStatus::Interrupted.
std::unique_ptr<LineReader> make_editline_reader(const char* program, bool color, std::string history_path,
                                                 const std::atomic<bool>* interrupted);
// Plain lines from stdin, no prompts: for pipes and files (and tests).
std::unique_ptr<LineReader> make_plain_reader();

// Where the interactive history is kept: $STRATA_CACHE/chat_history (default ~/.cache/strata/chat_history).
std::string default_history_path();

// C escapes (\n \t \r \\ \" \' \a \b \f \v \0 \ooo \xHH \uXXXX \UXXXXXXXX) turned into their characters; an
// unknown or incomplete escape is kept as written.
std::string unescape_c(std::string_view s);

// Replaces each invalid UTF-8 sequence (stray or truncated bytes, overlong forms, surrogates, > U+10FFFF) by
// U+FFFD; returns how many were replaced.
int sanitize_utf8(std::string& s);

// Ctrl-C: while a session generates, stops that generation; while waiting for input, interrupts the read.
// The one place strata keeps global mutable state: a signal handler can reach nothing else.
struct Interrupts {
    static void on_input();                // before reading a line
    static void generating(Session* s);    // before a generation (nullptr after it)
    static bool raised();                  // Ctrl-C seen since the last clear()
    static void clear();
    static const std::atomic<bool>* flag();
    static void restore();                 // the default handler again
};

}  // namespace strata::cli
