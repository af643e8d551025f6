#!/usr/bin/env python3
"""Fetches the calibration text for perplexity, profile and layer analysis into ~/.cache/strata/text/.

Source: Debian package r-cran-janeaustenr (version 1.0.0-1, "Jane Austen's Complete Novels", MIT licence;
the novels themselves are public domain), file
/usr/lib/R/site-library/janeaustenr/data/Rdata.rdb: R's lazy-load database holding the six novels as
character vectors, one element per line of the Project Gutenberg text. The script downloads the .deb with
`apt-get download` (no R needed), reads the database with a small reader of R's XDR serialization, and writes
one UTF-8 text per novel:

  austen-sense-and-sensibility.txt  austen-pride-and-prejudice.txt  austen-mansfield-park.txt
  austen-emma.txt                   austen-northanger-abbey.txt     austen-persuasion.txt

plus SOURCE.txt naming the package, version, file and the sha256 of every text. The main calibration text is
austen-pride-and-prejudice.txt: 167,892 tokens with SmolLM2's tokenizer (`strata perplexity` and llama.cpp's
llama-tokenize count the same), 264,890 for Persuasion with stories260K's 512-token vocabulary.

Why this text: a real English book that a distribution package ships verbatim. Debian and PyPI were searched
for children's stories of TinyStories' kind (for stories260K) and had none that ship their text (PyPI tinytok
ships code only; ovos-skill-fairytales fetches its tales at run time), so stories260K is measured on
austen-persuasion.txt, one of the two shorter novels, and bench/RESULTS.md says so.

Usage: python3 bench/get_calibration_text.py [--out DIR] [--deb FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

PACKAGE = "r-cran-janeaustenr"
VERSION = "1.0.0-1"
RDB = "usr/lib/R/site-library/janeaustenr/data/Rdata.rdb"
# The novels, recognised by their opening line (the database holds them in its own order).
TITLES = {
    "SENSE AND SENSIBILITY": "austen-sense-and-sensibility.txt",
    "PRIDE AND PREJUDICE": "austen-pride-and-prejudice.txt",
    "MANSFIELD PARK": "austen-mansfield-park.txt",
    "EMMA": "austen-emma.txt",
    "NORTHANGER ABBEY": "austen-northanger-abbey.txt",
    "PERSUASION": "austen-persuasion.txt",
}


def read_strsxp(blob: bytes) -> list[str]:
    """One R object serialized in XDR format (version 2 or 3) that is a character vector without attributes."""
    if blob[:2] != b"X\n":
        raise ValueError("not an XDR R serialization")
    pos = 2
    version = struct.unpack(">i", blob[pos:pos + 4])[0]
    pos += 12  # format version, writer's R version, minimal reader version
    if version == 3:
        nelen = struct.unpack(">i", blob[pos:pos + 4])[0]
        pos += 4 + nelen  # native encoding name
    flags = struct.unpack(">i", blob[pos:pos + 4])[0]
    pos += 4
    if flags & 0xFF != 16:  # STRSXP
        raise ValueError(f"expected a character vector, found SEXP type {flags & 0xFF}")
    n = struct.unpack(">i", blob[pos:pos + 4])[0]
    pos += 4
    lines = []
    for _ in range(n):
        cflags, length = struct.unpack(">ii", blob[pos:pos + 8])
        pos += 8
        if cflags & 0xFF != 9:  # CHARSXP
            raise ValueError("malformed character vector")
        if length < 0:  # NA_character_
            lines.append("")
            continue
        lines.append(blob[pos:pos + length].decode("utf-8" if cflags & (1 << 15) else "latin-1"))
        pos += length
    return lines


def read_rdb(data: bytes) -> list[list[str]]:
    """R's lazy-load database: blobs of (4-byte big-endian uncompressed length, zlib stream), back to back."""
    objects, pos = [], 0
    while pos < len(data):
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        z = zlib.decompressobj()
        raw = z.decompress(data[pos + 4:])
        if len(raw) != size:
            raise ValueError(f"blob at {pos}: {len(raw)} bytes, header says {size}")
        objects.append(read_strsxp(raw))
        pos = len(data) - len(z.unused_data)
    return objects


def fetch_deb(cache: Path) -> Path:
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if debs:
        return debs[-1]
    subprocess.run(["apt-get", "download", f"{PACKAGE}"], cwd=cache, check=True,
                   stdout=subprocess.DEVNULL)
    debs = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if not debs:
        sys.exit(f"apt-get download {PACKAGE} left no .deb in {cache}")
    return debs[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache_root = Path(os.environ.get("STRATA_CACHE", Path.home() / ".cache" / "strata"))
    ap.add_argument("--out", type=Path, default=cache_root / "text")
    ap.add_argument("--deb", type=Path, help="use this .deb instead of downloading one")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    deb = args.deb or fetch_deb(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        data = (Path(tmp) / RDB).read_bytes()
        changelog = Path(tmp) / "usr/share/doc" / PACKAGE / "changelog.Debian.gz"
        version = VERSION
        if changelog.exists():
            import gzip
            first = gzip.decompress(changelog.read_bytes()).decode().split("\n", 1)[0]
            version = first.split("(", 1)[1].split(")", 1)[0]
    source = [f"package: Debian {PACKAGE} {version} ({deb.name}, sha256 "
              f"{hashlib.sha256(deb.read_bytes()).hexdigest()})",
              f"file: /{RDB} (R lazy-load database, read by bench/get_calibration_text.py)",
              "texts: Jane Austen's six novels (public domain), one line per line of the Project Gutenberg text",
              ""]
    written = set()
    for lines in read_rdb(data):
        head = next((line.strip() for line in lines if line.strip()), "")
        name = next((f for t, f in TITLES.items() if head.upper() == t), None)
        if name is None:
            sys.exit(f"unexpected object in {RDB}: starts with {head!r}")
        text = "\n".join(lines).strip() + "\n"
        (args.out / name).write_text(text, encoding="utf-8")
        written.add(name)
        source.append(f"{name}: {len(text.encode())} bytes, {len(text.split())} words, "
                      f"sha256 {hashlib.sha256(text.encode()).hexdigest()}")
    if written != set(TITLES.values()):
        sys.exit(f"missing novels: {sorted(set(TITLES.values()) - written)}")
    (args.out / "SOURCE.txt").write_text("\n".join(source) + "\n")
    print("\n".join(source))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
