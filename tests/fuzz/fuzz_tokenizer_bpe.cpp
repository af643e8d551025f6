// Byte-level BPE tokenizer over real vocabularies: gpt-2 (llama.cpp's test vocabulary) and SmolLM2 (pre
// "smollm") when the model cache has it. See fuzz_tokenizer.h.
#include "fuzz_tokenizer.h"

STRATA_TOKENIZER_FUZZER(BPE, {"ggml-vocab-gpt-2.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"})
