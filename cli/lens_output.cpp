#include "cli/lens_output.h"

#include <cstdio>
#include <sstream>

#include "cli/svg.h"
#include "core/text/tokenizer.h"

namespace strata::cli {

using svg::num;

namespace {

// Bytes in the UTF-8 sequence starting at s[i] (1 to 4), or 0 where it is not valid UTF-8.
size_t utf8_length(std::string_view s, size_t i) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
    return n;
}

std::string hex_byte(unsigned char b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02X", b);
    return buf;
}

// A token in a Markdown table: a code span (one that holds backticks gets double ones), pipes escaped.
std::string md_token(const Tokenizer& tok, int32_t id) {
    std::string v = visible_token(tok.token_to_piece(id), 24), o;
    for (char c : v) o += c == '|' ? std::string("\\|") : std::string(1, c);
    return o.find('`') == std::string::npos ? "`" + o + "`" : "`` " + o + " ``";
}

std::string csv_field(const std::string& s) {
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

void markdown_tables(std::ostringstream& o, const Tokenizer& tok, const LensReport& r,
                     const LensReport* ref) {
    const int top_k = static_cast<int>(r.steps.front().cells.front().top.size());
    for (size_t pi = 0; pi < r.positions.size(); ++pi) {
        const int pos = r.positions[pi];
        const LensCell& out = r.steps.back().cells[pi];
        o << "\n### position " << pos << ": after " << md_token(tok, r.tokens[static_cast<size_t>(pos)])
          << " the model predicts " << md_token(tok, out.target) << " (p " << num("%.3f", out.target_prob)
          << ")\n\n";
        o << "| step | layer | top-" << top_k << " | p(target) | rank | entropy | KL to final |"
          << (ref ? " KL to " + spec_name(ref->spec) + " final |" : "") << "\n|--:|--:|---|--:|--:|--:|--:|"
          << (ref ? "--:|" : "") << "\n";
        for (const LensStep& s : r.steps) {
            const LensCell& c = s.cells[pi];
            o << "| " << s.step << " | " << s.layer << " | ";
            for (size_t k = 0; k < c.top.size(); ++k)
                o << (k ? " " : "") << md_token(tok, c.top[k].id) << " " << num("%.3f", c.top[k].prob);
            o << " | " << num("%.4f", c.target_prob) << " | " << c.target_rank << " | "
              << num("%.3f", c.entropy) << " | " << num("%.4f", c.kl) << " |";
            if (ref) o << " " << num("%.4f", c.kl_reference) << " |";
            o << "\n";
        }
    }
}

void csv_rows(std::ostringstream& o, const Tokenizer& tok, const LensReport& r) {
    for (const LensStep& s : r.steps)
        for (const LensCell& c : s.cells) {
            o << csv_field(spec_name(r.spec)) << ',' << s.step << ',' << s.layer << ',' << c.position << ','
              << r.tokens[static_cast<size_t>(c.position)] << ','
              << csv_field(tok.token_to_piece(r.tokens[static_cast<size_t>(c.position)])) << ',' << c.target
              << ',' << csv_field(tok.token_to_piece(c.target)) << ',' << c.target_rank << ','
              << num("%.6g", c.target_prob) << ',' << num("%.6g", c.entropy) << ',' << num("%.6g", c.kl)
              << ',' << (c.kl_reference >= 0 ? num("%.6g", c.kl_reference) : "");
            for (const LensToken& t : c.top)
                o << ',' << t.id << ',' << csv_field(tok.token_to_piece(t.id)) << ',' << num("%.6g", t.prob);
            o << '\n';
        }
}

}  // namespace

std::string visible_token(std::string_view piece, int max_chars) {
    if (piece.empty()) return "∅";
    std::string o;
    int chars = 0;
    for (size_t i = 0; i < piece.size();) {
        if (max_chars > 0 && chars == max_chars) return o + "…";
        const auto b = static_cast<unsigned char>(piece[i]);
        const size_t n = utf8_length(piece, i);
        if (b == ' ')
            o += "␣";
        else if (b == '\n')
            o += "↵";
        else if (b == '\t')
            o += "⇥";
        else if (n == 0 || b < 0x20 || b == 0x7f)
            o += hex_byte(b);
        else
            o.append(piece.substr(i, n));
        i += n ? n : 1;
        ++chars;
    }
    return o;
}

std::string lens_markdown(const Model& model, const LensReport& r, const LensReport* ref) {
    const Tokenizer& tok = model.tokenizer();
    std::ostringstream o;
    o << "## logit lens: " << (model.config().name.empty() ? model.file().path : model.config().name)
      << ", layer spec " << spec_name(r.spec) << " (" << r.steps.size() << " steps over "
      << model.config().n_layers << " layers), " << r.tokens.size() << " prompt tokens\n\n"
      << "After every step the model's final norm and output head read the residual stream. Per step: the "
         "top "
         "tokens with their probabilities, the probability and rank of the token the full model predicts "
         "(its "
         "last step's top-1), the entropy and KL(final || lens), both in nats.\n";
    markdown_tables(o, tok, r, ref);
    if (ref) {
        o << "\n## reference: layer spec " << spec_name(ref->spec) << " (" << ref->steps.size()
          << " steps)\n";
        markdown_tables(o, tok, *ref, nullptr);
    }
    return o.str();
}

std::string lens_csv(const Model& model, const LensReport& r, const LensReport* ref) {
    const Tokenizer& tok = model.tokenizer();
    std::ostringstream o;
    o << "layer_spec,step,layer,position,input_id,input_text,target_id,target_text,target_rank,target_prob,"
         "entropy,kl,"
         "kl_reference";
    for (size_t k = 1; k <= r.steps.front().cells.front().top.size(); ++k)
        o << ",top" << k << "_id,top" << k << "_text,top" << k << "_prob";
    o << '\n';
    csv_rows(o, tok, r);
    if (ref) csv_rows(o, tok, *ref);
    return o.str();
}

}  // namespace strata::cli
