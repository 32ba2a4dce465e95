#!/usr/bin/env python3
"""Writer and checker of the snapshot isolation model test (isolation_model_test.sh).

A writer W works in ROOT/w<W>/ with a deterministic random sequence of
operations drawn from SEED and W (create, write of at most one page,
truncate, rename, unlink). Each operation is a single FUSE request and is
made durable (fsync) before the writer records "operation k done" in
ROOT/w<W>.count (8 bytes, fsynced); only then does it start operation k+1.
So a point-in-time snapshot shows, for each writer, a counter c and a
directory equal to the model after c or after c+1 operations.

  isolation_model.py write ROOT W SEED STOPFILE
  isolation_model.py check ROOT W SEED        -> exit 1 with a message if it differs
  isolation_model.py stats ROOT W SEED        -> "files nonzero_files" of the model at the counter
"""
import os
import random
import sys

NAMES = ["f%d" % i for i in range(8)]
PAGES = 400  # files up to 1.6 MiB: two chunks of the default 1 MiB


class Model:
    def __init__(self, seed, w):
        self.rng = random.Random(seed * 1000 + w)
        self.files = {}

    def next_op(self):
        """Draws the next operation from the current state and applies it to the model."""
        r = self.rng
        present = sorted(self.files)
        absent = [n for n in NAMES if n not in self.files]
        kind = r.choice(["create", "write", "write", "write", "truncate", "rename", "unlink"])
        if kind == "create" or not present:
            if not absent:
                kind = "write"
            else:
                name = r.choice(absent)
                self.files[name] = bytearray()
                return ("create", name)
        name = r.choice(present)
        if kind == "write":
            page = r.randrange(PAGES)
            start = r.randrange(4096)
            length = r.randrange(1, 4096 - start + 1)
            data = bytes(r.getrandbits(8) for _ in range(length))
            off = page * 4096 + start
            f = self.files[name]
            if len(f) < off + length:
                f.extend(bytes(off + length - len(f)))
            f[off:off + length] = data
            return ("write", name, off, data)
        if kind == "truncate":
            size = r.randrange(len(self.files[name]) + 8192 + 1)
            f = self.files[name]
            if size < len(f):
                del f[size:]
            else:
                f.extend(bytes(size - len(f)))
            return ("truncate", name, size)
        if kind == "rename" and absent:
            to = r.choice(absent)
            self.files[to] = self.files.pop(name)
            return ("rename", name, to)
        del self.files[name]
        return ("unlink", name)


def apply(d, op):
    kind, name = op[0], op[1]
    path = os.path.join(d, name)
    if kind == "create":
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    elif kind in ("write", "truncate"):
        fd = os.open(path, os.O_WRONLY)
        try:
            if kind == "write":
                os.pwrite(fd, op[3], op[2])
            else:
                os.ftruncate(fd, op[2])
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "rename":
        os.rename(path, os.path.join(d, op[2]))
    else:
        os.unlink(path)


def counter_path(root, w):
    return os.path.join(root, "w%d.count" % w)


def write(root, w, seed, stop):
    d = os.path.join(root, "w%d" % w)
    os.mkdir(d)
    cfd = os.open(counter_path(root, w), os.O_CREAT | os.O_RDWR, 0o644)
    m = Model(seed, w)
    k = 0
    while not os.path.exists(stop):
        apply(d, m.next_op())
        k += 1
        os.pwrite(cfd, b"%08d" % k, 0)
        os.fsync(cfd)
    os.close(cfd)
    print(k)


def model_at(seed, w, n):
    m = Model(seed, w)
    for _ in range(n):
        m.next_op()
    return m.files


def read_dir(d):
    out = {}
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            out[name] = f.read()
    return out


def read_counter(root, w):
    try:
        with open(counter_path(root, w), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    return int(data) if data else 0


def describe(a, b):
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            return "%s %s" % (name, "missing" if name not in b else "unexpected")
        if bytes(a[name]) != b[name]:
            return "%s differs (model %d bytes, seen %d)" % (name, len(a[name]), len(b[name]))
    return "equal"


def check(root, w, seed):
    d = os.path.join(root, "w%d" % w)
    c = read_counter(root, w)
    seen = read_dir(d) if os.path.isdir(d) else None
    if seen is None:
        if c == 0:
            return 0
        print("w%d: counter %d but no directory" % (w, c))
        return 1
    at_c = model_at(seed, w, c)
    at_next = model_at(seed, w, c + 1)
    for model in (at_c, at_next):
        if {k: bytes(v) for k, v in model.items()} == seen:
            return 0
    print("w%d: state is neither the model after %d operations (%s) nor after %d (%s)" %
          (w, c, describe(at_c, seen), c + 1, describe(at_next, seen)))
    return 1


def stats(root, w, seed):
    files = model_at(seed, w, read_counter(root, w))
    nonzero = sum(1 for v in files.values() if any(v))
    print(len(files), nonzero)
    return 0


if __name__ == "__main__":
    cmd, root, w, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if cmd == "write":
        write(root, w, seed, sys.argv[5])
        sys.exit(0)
    sys.exit(check(root, w, seed) if cmd == "check" else stats(root, w, seed))
