"""Helpers for the conformance cases: a case context that records every
step's result (a value or an errno name), running steps as other users,
stat summaries that leave out what legitimately differs between two
filesystems (inode numbers, devices, block counts, absolute times)."""

import ctypes
import errno
import grp
import os
import pwd
import subprocess
import time

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

_libc = ctypes.CDLL(None, use_errno=True)

# Test users and groups: cfs_u1, cfs_u2 (each with its own group) and a
# group cfs_g that both belong to. Created when missing (needs root).
USERS = {}   # name -> (uid, gid, [supplementary gids])
NAMES = {0: "root"}  # uid/gid -> short name, for stable output


def ensure_users():
    def run(*cmd):
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    try:
        grp.getgrnam("cfs_g")
    except KeyError:
        run("groupadd", "-f", "cfs_g")
    for name in ("cfs_u1", "cfs_u2"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            run("useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-G", "cfs_g", name)
    g = grp.getgrnam("cfs_g").gr_gid
    NAMES[g] = "g"
    for short, name in (("u1", "cfs_u1"), ("u2", "cfs_u2")):
        pw = pwd.getpwnam(name)
        USERS[short] = (pw.pw_uid, pw.pw_gid, [pw.pw_gid, g])
        NAMES[pw.pw_uid] = short
        NAMES.setdefault(pw.pw_gid, short + "grp")


def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def norm(v):
    """A stable, comparable text for a step's result."""
    if v is None:
        return "ok"
    if isinstance(v, bytes):
        return "bytes[%d]%r" % (len(v), v[:64])
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(norm(x) for x in v) + "]"
    return str(v)


def kind(mode):
    import stat as s
    for test, name in ((s.S_ISREG, "reg"), (s.S_ISDIR, "dir"), (s.S_ISLNK, "lnk"),
                       (s.S_ISFIFO, "fifo"), (s.S_ISCHR, "chr"), (s.S_ISBLK, "blk"),
                       (s.S_ISSOCK, "sock")):
        if test(mode):
            return name
    return "?"


def st(path, follow=True):
    s = os.stat(path) if follow else os.lstat(path)
    size = s.st_size if not os.path.isdir(path) or not follow else "-"
    if kind(s.st_mode) == "dir":
        size = "-"  # directory sizes are filesystem specific
    return "%s %04o n%d u=%s g=%s s=%s" % (
        kind(s.st_mode), s.st_mode & 0o7777, s.st_nlink,
        NAMES.get(s.st_uid, s.st_uid), NAMES.get(s.st_gid, s.st_gid), size)


def renameat2(old, new, flags):
    r = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new),
                        ctypes.c_uint(flags))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old)


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        out = b""
        while True:
            b = os.read(fd, 1 << 16)
            if not b:
                return out
            out += b
    finally:
        os.close(fd)


class Case:
    """One case run in one directory: records (label, result) steps."""

    def __init__(self, root, name):
        self.d = os.path.join(root, name)
        self.steps = []

    def p(self, *parts):
        return os.path.join(self.d, *parts)

    def rec(self, label, value):
        self.steps.append((label, norm(value) if not isinstance(value, str) else value))

    def do(self, label, fn, *args, **kw):
        """Runs fn; records its result or its errno; returns the result."""
        try:
            r = fn(*args, **kw)
        except OSError as e:
            self.rec(label, errname(e))
            return None
        self.rec(label, r)
        return r

    def st(self, label, path, follow=True):
        self.do(label, st, path, follow)

    def as_user(self, who, label, fn, *args):
        """Runs fn in a child process as test user `who` (u1, u2)."""
        uid, gid, groups = USERS[who]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            res = "EXC child"
            try:
                os.close(r)
                os.setgroups(groups)
                os.setgid(gid)
                os.setuid(uid)
                try:
                    res = norm(fn(*args))
                except OSError as e:
                    res = errname(e)
                except Exception as e:  # noqa: BLE001 - reported as a difference
                    res = "EXC %s: %s" % (type(e).__name__, e)
            finally:
                os.write(w, res.encode())
                os._exit(0)
        os.close(w)
        out = b""
        while True:
            b = os.read(r, 65536)
            if not b:
                break
            out += b
        os.close(r)
        os.waitpid(pid, 0)
        self.rec("%s [%s]" % (label, who), out.decode(errors="replace"))

    def changed(self, label, path, op, field="mtime", follow=True, after=None):
        """Records whether `op` changes path's mtime or ctime (`after`: the
        path of the same object once op has run, e.g. for a rename)."""
        def get(p):
            s = os.stat(p) if follow else os.lstat(p)
            return s.st_mtime_ns if field == "mtime" else s.st_ctime_ns
        before = get(path)
        time.sleep(0.02)  # beyond the kernel's coarse clock granularity
        try:
            op()
        except OSError as e:
            self.rec(label, "op failed: " + errname(e))
            return
        self.rec(label + " (" + field + " changed)", str(get(after or path) > before))
