#include "core/run/programs.h"

#include <cctype>
#include <stdexcept>

namespace strata {

std::string router_prompt(const std::vector<std::string>& domains, std::string_view question) {
    std::string s = "Please classify the question to one of these classes:\n";
    for (size_t i = 0; i < domains.size(); ++i) s += std::to_string(i + 1) + ". " + domains[i] + "\n";
    s += "\nQuestion: ";
    s += question;
    return s;
}

namespace {
std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}
}  // namespace

RouterChoice choose_domain(std::string_view reply, const std::vector<std::string>& domains) {
    if (domains.empty()) throw std::invalid_argument("choose_domain: no domains");
    const std::string text = lower(reply);
    size_t best_pos = std::string::npos, best_len = 0;
    int best = -1;
    for (size_t i = 0; i < domains.size(); ++i) {
        const std::string name = lower(domains[i]);
        if (name.empty()) continue;
        const size_t pos = text.find(name);
        if (pos == std::string::npos) continue;
        if (pos < best_pos || (pos == best_pos && name.size() > best_len)) {
            best_pos = pos;
            best_len = name.size();
            best = static_cast<int>(i);
        }
    }
    if (best >= 0) return {best, "its reply names \"" + domains[static_cast<size_t>(best)] + "\""};
    // A number on its own: digits not touching other digits or letters.
    for (size_t i = 0; i < text.size();) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
        const bool alone = (i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]))) &&
                           (j == text.size() || !std::isalpha(static_cast<unsigned char>(text[j])));
        if (alone && j - i <= 4) {
            const int n = std::stoi(text.substr(i, j - i));
            if (n >= 1 && n <= static_cast<int>(domains.size()))
                return {n - 1, "its reply gives the number " + std::to_string(n)};
        }
        i = j;
    }
    return {static_cast<int>(domains.size()) - 1,
            "its reply names no domain, so the last one (\"" + domains.back() + "\") answers"};
}

std::vector<std::string> default_think_steps() {
    return {"\nThis question looks complex. Let me think again.\n", "\nLet me check if my answer is correct or not.\n"};
}

std::string summarizer_prompt(std::string_view question, std::string_view thinking) {
    std::string s = "Answer this question by summarizing the given analysis and thoughts:\n\n# Question:\n\n";
    s += question;
    s += "\n\n# Analysis and thought:\n\n";
    s += thinking;
    s += "\n";
    return s;
}

}  // namespace strata
