#!/usr/bin/env python3
"""Writes the mutated copy of one source file.

    apply_mutant.py MUTANT_FILE SOURCE_FILE OUTPUT_FILE

A .mutant file holds a description and one or more hunks:

    # what the mistake is, and which Raft rule it breaks
    @@ file src/node/server.cc
    @@ original
    <exact lines of the reference source>
    @@ mutant
    <the lines that replace them>

Each hunk's original text must occur exactly once in its file, so a mutant
can never silently stop applying when the reference code changes: the build
fails instead, naming the mutant and the hunk.
"""
import os
import sys


def parse(path):
    hunks, current, section = [], None, None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.startswith("@@ file "):
                current = {"file": line[len("@@ file "):].strip(), "original": [], "mutant": [], "line": number}
                hunks.append(current)
                section = None
            elif line.rstrip("\n") in ("@@ original", "@@ mutant"):
                if current is None:
                    sys.exit(f"{path}:{number}: '@@ file PATH' must come first")
                section = line.strip()[3:]
            elif section is not None:
                current[section].append(line)
            elif line.strip() and not line.startswith("#"):
                sys.exit(f"{path}:{number}: expected '# comment', '@@ file', '@@ original' or '@@ mutant'")
    if not hunks:
        sys.exit(f"{path}: no hunks")
    return hunks


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    mutant, source, output = sys.argv[1:]
    with open(source, encoding="utf-8") as f:
        text = f.read()
    applied = 0
    for hunk in parse(mutant):
        if not source.endswith(hunk["file"]):
            continue
        original, replacement = "".join(hunk["original"]), "".join(hunk["mutant"])
        count = text.count(original)
        if count != 1:
            sys.exit(f"{mutant}:{hunk['line']}: the original text occurs {count} times in {hunk['file']} "
                     "(expected exactly once): update the mutant to the current source")
        text = text.replace(original, replacement)
        applied += 1
    if applied == 0:
        sys.exit(f"{mutant}: no hunk for {source}")
    os.makedirs(os.path.dirname(output) or ".", exist_ok=True)
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    main()
