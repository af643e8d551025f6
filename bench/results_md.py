"""bench/RESULTS.md is written by several bench scripts; each owns one section between marker comments
(<!-- begin NAME --> ... <!-- end NAME -->) and replaces only that, so running one script keeps the others'."""

from __future__ import annotations

import datetime
import os
import platform
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def replace_section(path: str, name: str, text: str) -> None:
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}\n"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end) + r"\n?", re.S)
    new = pattern.sub(lambda _: block, old, count=1) if pattern.search(old) else old.rstrip() + "\n\n" + block
    with open(path, "w", encoding="utf-8") as f:
        f.write(new.lstrip())


def read_section(path: str, name: str) -> str:
    """The text between a section's markers, or "" where the file or the section is missing."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    m = re.search(re.escape(begin) + r"\n(.*?)" + re.escape(end), old, re.S)
    return m.group(1) if m else ""


def machine() -> str:
    cpu = "?"
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except (OSError, AttributeError):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()}"


def commit() -> str:
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def today() -> str:
    return str(datetime.date.today())
