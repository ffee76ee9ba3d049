#!/usr/bin/env python3
"""py_objects: a Python program that builds and frees millions of small objects.

Records as dicts, lists of them, strings built by formatting and joining,
tuples and ints, grouped in a dict of lists, sorted, filtered, and dropped
round after round, as a data-munging script does. The runner starts it with
PYTHONMALLOC=malloc, so that every object goes through malloc (by default
CPython serves objects up to 512 bytes from its own arenas and only the
rest, and the arenas themselves, from malloc), and PYTHONHASHSEED=0, so that
dict and set layouts are the same in every run.

Usage: py_objects.py [SCALE [SEED]]. Prints "checksum <hex>", computed from
the data only (not from ids or iteration order of sets).
"""
import random
import sys
import zlib

ROUNDS = 3  # at scale 1
RECORDS = 30_000  # per round


def one_round(rng, nrecords):
    records = []
    for i in range(nrecords):
        name = "user%d_%s" % (rng.randrange(50_000), "x" * rng.randrange(1, 24))
        records.append({
            "id": i,
            "name": name,
            "tags": [("t%d" % rng.randrange(100)) for _ in range(rng.randrange(1, 6))],
            "score": (rng.random(), rng.randrange(1000)),
        })

    groups = {}
    for r in records:
        groups.setdefault(r["name"][:6], []).append(r)

    lines = []
    for key in sorted(groups):
        members = groups[key]
        members.sort(key=lambda r: (r["score"][1], r["id"]))
        lines.append(key + ":" + ",".join(str(r["id"]) for r in members[:8]))

    keep = [r for r in records if r["score"][1] % 3 == 0]
    tag_count = {}
    for r in keep:
        for t in r["tags"]:
            tag_count[t] = tag_count.get(t, 0) + 1

    text = "\n".join(lines).encode()
    summary = "%d %d %d %s" % (len(records), len(keep), len(groups),
                               sorted(tag_count.items())[:5])
    return zlib.crc32(summary.encode(), zlib.crc32(text))


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    seed = int(sys.argv[2], 0) if len(sys.argv) > 2 else 9
    if scale <= 0 or len(sys.argv) > 3:
        sys.exit("usage: py_objects.py [SCALE [SEED]]")
    rng = random.Random(seed)
    rounds = max(1, round(ROUNDS * scale))
    nrecords = max(1, round(RECORDS * min(1.0, scale * ROUNDS)))
    crc = 0
    for _ in range(rounds):
        crc = zlib.crc32(one_round(rng, nrecords).to_bytes(4, "little"), crc)
    print("checksum %08x" % crc)


if __name__ == "__main__":
    main()
