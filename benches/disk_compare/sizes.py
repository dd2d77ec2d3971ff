"""Prints the on-disk size of the blocks under each directory given: per directory the
samples (meta.json numSamples), chunk bytes, index bytes and bytes per sample, and each
against the first directory's.

usage: sizes.py DIR [DIR ...]
"""

import json
import os
import sys


def blocks(root):
    """Every block directory (one holding meta.json) below root."""
    for d, _, files in os.walk(root):
        if "meta.json" in files and "index" in files:
            yield d


def sizes(root):
    samples = chunks = index = n = 0
    for b in blocks(root):
        n += 1
        with open(os.path.join(b, "meta.json")) as f:
            samples += json.load(f)["stats"]["numSamples"]
        index += os.path.getsize(os.path.join(b, "index"))
        cdir = os.path.join(b, "chunks")
        chunks += sum(os.path.getsize(os.path.join(cdir, c)) for c in os.listdir(cdir))
    return n, samples, chunks, index


def main():
    first = None
    print(f"{'dir':<40} {'blocks':>6} {'samples':>12} {'chunks B':>13} {'index B':>12} "
          f"{'chunks B/s':>10} {'index B/s':>9} {'B/sample':>9} {'vs first':>8}")
    for root in sys.argv[1:]:
        n, samples, chunks, index = sizes(root)
        per = (chunks + index) / samples if samples else float("nan")
        first = first or per
        print(f"{os.path.basename(root.rstrip('/')):<40} {n:>6} {samples:>12} {chunks:>13} "
              f"{index:>12} {chunks / samples:>10.4f} {index / samples:>9.4f} {per:>9.4f} "
              f"{per / first:>8.4f}")


if __name__ == "__main__":
    main()
