// SentencePiece-style tokenizer over real vocabularies: stories260K (llama2.c's 512-token vocab in GGUF),
// llama-spm and phi-3 (llama.cpp's test vocabularies), Gemma 3 when the model cache has it. See fuzz_tokenizer.h.
#include "fuzz_tokenizer.h"

STRATA_TOKENIZER_FUZZER(SPM, {"stories260K.gguf", "ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                              "gemma-3-270m-q4_k_m.gguf"})
