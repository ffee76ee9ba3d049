"""Builds and frees millions of small Python objects (dicts, lists, tuples,
strings, sets, bytes) and prints a deterministic summary.

real_programs.py runs it with and without LD_PRELOAD=libmmkit-malloc.so (and
PYTHONMALLOC=malloc, so each object is one malloc/free rather than a slot in
CPython's own arenas) and requires the same output. Its output depends only
on the computation, never on addresses, hash seeds or timing.
Usage: python3 objects.py [ROUNDS]   (default 3, about a second)
"""
import hashlib
import sys


def one_round(r, n):
    digest = hashlib.sha256()
    # A dict of tuples holding strings and lists: ~5 objects per entry.
    table = {f"key-{r}-{i}": (i, str(i * 7919), [i, i + r, f"v{i % 97}"]) for i in range(n)}
    picked = [(k, v[1]) for k, v in table.items() if v[0] % 3 == 0]
    digest.update(repr(picked[:: max(1, len(picked) // 50)]).encode())
    # Lists that grow (realloc) and shrink, then are dropped.
    grow = []
    for i in range(n):
        grow.append((i % 251, chr(65 + i % 26) * (1 + i % 40)))
        if i % 1000 == 999:
            del grow[::2]
    digest.update(str(len(grow)).encode())
    # Strings built by joining and slicing, bytes, a set of tuples (only its
    # size and sorted contents are used: no dependence on hash order).
    text = "-".join(v[1] for v in table.values())
    words = text.split("-")
    blob = b"".join(w.encode()[::-1] for w in words[:: 3])
    uniq = {(w[:2], len(w)) for w in words}
    digest.update(blob[:: 97])
    digest.update(repr(sorted(uniq)[:200]).encode())
    # Nested structures freed as a whole: the dict drops every entry at once.
    nested = [{"a": [j, (j, str(j))], "b": {"c": j}} for j in range(n // 2)]
    total = sum(len(x["a"][1][1]) for x in nested) + sum(len(v[2]) for v in table.values())
    del table, picked, grow, words, uniq, nested
    return digest.hexdigest()[:16], len(text), len(blob), total


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    n = 50000
    summary = hashlib.sha256()
    for r in range(rounds):
        d, text_len, blob_len, total = one_round(r, n)
        print(f"round {r}: digest {d} text {text_len} blob {blob_len} total {total}")
        summary.update(d.encode())
    print(f"objects.py: {rounds} rounds of {n} entries, summary {summary.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
