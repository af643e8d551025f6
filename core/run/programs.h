// The text logic of the multi-model programs (strata crosstalk, cobblers, think), kept apart from their
// terminal front ends so that it can be tested on strings: the router's prompt and how its reply picks a
// domain, the thinker's default steps, and the summariser's prompt. Modelled on chatllm.cpp's
// scripts/threecobblers.py and scripts/ya_o1.py.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace strata {

// "Please classify the question to one of these classes:\n1. A\n2. B\n\nQuestion: ..."
std::string router_prompt(const std::vector<std::string>& domains, std::string_view question);

struct RouterChoice {
    int index = 0;       // into domains
    std::string reason;  // why, for the user: "its reply names \"Maths\"", "... number 2", "no domain ..."
};
// The domain a router's reply chooses: the domain name that occurs first in the reply (case-insensitive; at
// one position the longer name wins), else the first stand-alone number 1..N ("2", "2.", "class 2"), else the
// last domain (the catch-all, as in threecobblers.py). domains must not be empty.
RouterChoice choose_domain(std::string_view reply, const std::vector<std::string>& domains);

// The thinker's ai-prefix and its continuation suffixes (ya_o1.py's ThoughtLLM1).
inline constexpr const char* kThinkPrefix = "Let's break it down and think step by step.\n";
std::vector<std::string> default_think_steps();
// The summariser's default system prompt and its per-question prompt.
inline constexpr const char* kSummarizerSystem =
    "You are an AI assistant that answers questions by checking and summarizing the thought given by user.\n"
    "ALWAYS use the thought given by user. DO NOT answer it yourself.";
std::string summarizer_prompt(std::string_view question, std::string_view thinking);

}  // namespace strata
