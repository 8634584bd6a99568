#!/usr/bin/env python3
"""Line counts of the largest Rust files and functions under crates/.

Used for the structure work (issue #22): the closing note compares the
output at two commits. A function runs from its `fn` line to the first
closing brace at the same indentation, which is how rustfmt lays them out.

usage: scripts/line-counts.py [ROOT] [--top N]
"""
import os
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def rust_files(root):
    for base, dirs, files in os.walk(os.path.join(root, "crates")):
        dirs[:] = [d for d in dirs if d not in ("target", "fuzz")]
        for name in files:
            if name.endswith(".rs"):
                yield os.path.join(base, name)


def functions(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m or line.rstrip().endswith(";"):
            continue
        indent = m.group(1)
        for j in range(i, len(lines)):
            if lines[j] == indent + "}" or (j == i and line.rstrip().endswith("}")):
                yield m.group(7), i + 1, j - i + 1
                break


def main():
    args = sys.argv[1:]
    top = 15
    if "--top" in args:
        k = args.index("--top")
        top = int(args[k + 1])
        del args[k : k + 2]
    root = args[0] if args else "."
    files, fns = [], []
    for path in rust_files(root):
        rel = os.path.relpath(path, root)
        with open(path, encoding="utf-8") as f:
            files.append((sum(1 for _ in f), rel))
        for name, line, count in functions(path):
            fns.append((count, f"{rel}:{line} {name}"))
    print(f"total lines: {sum(n for n, _ in files)} in {len(files)} files")
    print(f"\nlargest files (top {top})")
    for n, rel in sorted(files, reverse=True)[:top]:
        print(f"{n:6} {rel}")
    print(f"\nlargest functions (top {top})")
    for n, where in sorted(fns, reverse=True)[:top]:
        print(f"{n:6} {where}")


if __name__ == "__main__":
    main()
