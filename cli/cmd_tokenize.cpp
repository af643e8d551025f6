// strata tokenize: a text's tokens as llama.cpp's llama-tokenize prints them ("    id -> 'piece'" per token, or
// --ids as a Python list, --show-count the total), for checking prompts and chat templates. Only the
// vocabulary is read, so llama.cpp's vocabulary-only files (ggml-vocab-*.gguf) work too.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/chat_io.h"
#include "cli/commands.h"
#include "core/engine/model.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

namespace {

struct TokenizeArgs {
    std::string model_path, tokenizer_path, prompt, prompt_file;
    bool from_stdin = false, ids = false, show_count = false, no_bos = false, no_parse_special = false;
    bool no_escape = false;
};

std::string read_all(std::istream& in) {
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The text to tokenize: --stdin, else -f (read verbatim: a trailing newline is a token too), else -p; escapes
// processed unless --no-escape, as llama-tokenize does.
std::string input_text(const TokenizeArgs& a) {
    std::string text;
    if (a.from_stdin) {
        text = read_all(std::cin);
    } else if (!a.prompt_file.empty()) {
        std::ifstream in(a.prompt_file, std::ios::binary);
        if (!in) throw std::runtime_error("cannot read prompt file '" + a.prompt_file + "'");
        text = read_all(in);
    } else {
        text = a.prompt;
    }
    return a.no_escape ? text : unescape_c(text);
}

}  // namespace

std::function<int()> register_tokenize(CLI::App& app) {
    auto args = std::make_shared<TokenizeArgs>();
    CLI::App* sub = app.add_subcommand("tokenize", "print a text's tokens (ids and pieces), as llama-tokenize does");
    sub->add_option("-m,--model", args->model_path, "model file (GGUF, a vocabulary-only GGUF, or llama2.c .bin)")
        ->required();
    sub->add_option("--tokenizer", args->tokenizer_path, "llama2.c tokenizer.bin (default: beside the checkpoint)");
    sub->add_option("-p,--prompt", args->prompt, "the text");
    sub->add_option("-f,--file", args->prompt_file, "read the text from a file");
    sub->add_flag("--stdin", args->from_stdin, "read the text from standard input (before -f and -p)");
    sub->add_flag("--ids", args->ids, "print only the ids, as a Python list: [1, 15043, 3186]");
    sub->add_flag("--show-count", args->show_count, "print the number of tokens at the end");
    sub->add_flag("--no-bos", args->no_bos, "no BOS even where the vocabulary adds one");
    sub->add_flag("--no-parse-special", args->no_parse_special,
                  "special tokens' text (<s>, <|im_start|>) stays text instead of becoming those tokens");
    sub->add_flag("--no-escape", args->no_escape, "take \\n, \\t, \\xHH ... literally");
    return [args]() -> int {
        const TokenizeArgs& a = *args;
        if (!a.from_stdin && a.prompt_file.empty() && a.prompt.empty())
            throw std::invalid_argument("tokenize needs a text: -p TEXT, -f FILE or --stdin");
        const std::string text = input_text(a);
        LoadOptions lo;
        lo.tokenizer_path = a.tokenizer_path;
        const Tokenizer tok = load_tokenizer(a.model_path, lo);
        // As llama-tokenize: the special tokens are added only where the vocabulary adds a BOS.
        const bool add_special = tok.add_bos() && !a.no_bos;
        const std::vector<int32_t> ids = tok.encode(text, add_special, !a.no_parse_special);
        std::string out;
        if (a.ids) {
            out += "[";
            for (size_t i = 0; i < ids.size(); ++i) out += (i ? ", " : "") + std::to_string(ids[i]);
            out += "]\n";
        } else {
            char id[16];
            for (int32_t t : ids) {
                std::snprintf(id, sizeof id, "%6d", t);
                out += std::string(id) + " -> '" + tok.token_to_piece(t, /*special=*/true) + "'\n";
            }
        }
        if (a.show_count) out += "Total number of tokens: " + std::to_string(ids.size()) + "\n";
        std::fwrite(out.data(), 1, out.size(), stdout);
        return 0;
    };
}

}  // namespace strata::cli
