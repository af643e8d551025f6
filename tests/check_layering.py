#!/usr/bin/env python3
"""The include rules of DESIGN.md and core/'s rooms, checked on every #include "..." of the tree.

Dependencies point one way: front ends (cli/, server/, python/) -> core/api, analysis, run, engine, text ->
loaders, kernels, cuda. Within core/: text at the bottom (with loaders), the engine over it, run over the engine,
analysis over run (profiles time generation and speculative decoding), api (the library's face) on top. tests/, bench/ and the fuzz harnesses may include anything.
Prints each violation as FILE:LINE: ... and exits 1 if there is one.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
TEXT, ENGINE, RUN, ANALYSIS, API = (f"core/{r}/" for r in ("text", "engine", "run", "analysis", "api"))
CORE = [TEXT, ENGINE, RUN, ANALYSIS, API]
# folder (prefix of the including file) -> prefixes its includes may start with
ALLOWED = {
    "kernels/": ["kernels/"],
    "loaders/": ["loaders/", "kernels/dtype.h", "kernels/kernels.h"],
    "cuda/": ["cuda/", "kernels/"],
    TEXT: [TEXT, "loaders/metadata.h"],
    ENGINE: [ENGINE, TEXT, "loaders/", "kernels/", "cuda/backend.h"],
    RUN: [RUN, ENGINE, TEXT],
    ANALYSIS: [ANALYSIS, RUN, ENGINE, TEXT, "loaders/gguf_writer.h", "kernels/"],
    API: CORE,
    # The front ends: core only, never kernels/, cuda/ or loaders/.
    "cli/": ["cli/", "server/"] + CORE,  # cli/main.cpp registers `strata serve` (server/serve.h)
    "server/": ["server/"] + CORE,
    "python/": ["python/"] + CORE,
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def main() -> int:
    bad = 0
    checked = 0
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.suffix not in (".h", ".cpp", ".cu", ".cuh", ".c") or rel.startswith(("build", ".")):
            continue
        if rel.startswith("core/") and rel.count("/") == 1:
            print(f"{rel}: core/ holds only its rooms ({', '.join(CORE)})")
            bad += 1
            continue
        rule = next((p for p in sorted(ALLOWED, key=len, reverse=True) if rel.startswith(p)), None)
        if rule is None:
            continue  # tests/, bench/: anything
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            checked += 1
            inc = m.group(1)
            if "/" not in inc:
                continue  # a file beside this one
            if not any(inc.startswith(a) for a in ALLOWED[rule]):
                print(f"{rel}:{n}: includes \"{inc}\", which {rule} may not (allowed: {', '.join(ALLOWED[rule])})")
                bad += 1
    # an unknown room
    for path in (ROOT / "core").iterdir():
        if path.is_dir() and f"core/{path.name}/" not in CORE:
            print(f"core/{path.name}/: not a room the rules know ({', '.join(CORE)})")
            bad += 1
    print(f"layering: {checked} includes checked, {bad} violation(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
