"""Conformance cases: permissions and ownership with several users, sticky
and setgid directories, access(), chmod/chown rules, xattrs, locks, mmap,
statfs. Steps marked [u1]/[u2] run as the test users cfs_u1/cfs_u2."""

import fcntl
import mmap
import os
import time

from lib import USERS, read_file, write_file

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def _mk(path, data=b"x", mode=0o644, uid=0, gid=0):
    write_file(path, data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)


@case
def perm_file_modes(c):
    for mode in (0o600, 0o640, 0o644, 0o666, 0o604, 0o000):
        f = c.p("f%o" % mode)
        _mk(f, mode=mode, gid=USERS["u1"][1])
        for who in ("u1", "u2"):
            c.as_user(who, "read %o" % mode, read_file, f)
            c.as_user(who, "write %o" % mode, lambda f=f: os.close(os.open(f, os.O_WRONLY)))
        c.do("root reads %o" % mode, read_file, f)
    u1, g1 = USERS["u1"][0], USERS["u1"][1]
    _mk(c.p("own"), mode=0o077, uid=u1, gid=g1)
    c.as_user("u1", "owner without owner bits", read_file, c.p("own"))
    c.as_user("u2", "other with group bits only", read_file, c.p("own"))


@case
def perm_dirs(c):
    for mode in (0o755, 0o777, 0o733, 0o711, 0o700, 0o666):
        d = c.p("d%o" % mode)
        os.mkdir(d)
        write_file(os.path.join(d, "known"), b"k")
        os.chmod(d, mode)
        c.as_user("u1", "create in %o" % mode, write_file, os.path.join(d, "new"), b"n")
        c.as_user("u1", "list %o" % mode, lambda d=d: sorted(os.listdir(d)))
        c.as_user("u1", "stat known in %o" % mode, lambda d=d: os.stat(os.path.join(d, "known")).st_size)
        c.as_user("u1", "unlink known in %o" % mode, os.unlink, os.path.join(d, "known"))
    d = c.p("d777")
    c.st("created file owned by caller", os.path.join(d, "new"))
    c.as_user("u1", "mkdir", os.mkdir, os.path.join(d, "sub"))
    c.st("created dir owned by caller", os.path.join(d, "sub"))
    c.as_user("u1", "symlink", os.symlink, "known", os.path.join(d, "sym"))
    c.st("created symlink owned by caller", os.path.join(d, "sym"), follow=False)
    c.as_user("u1", "mkfifo", os.mkfifo, os.path.join(d, "fifo"))
    c.st("created fifo owned by caller", os.path.join(d, "fifo"))


@case
def setgid_dir(c):
    d = c.p("sg")
    os.mkdir(d)
    os.chown(d, 0, USERS["u2"][1])
    os.chmod(d, 0o2777)
    c.as_user("u1", "create", write_file, os.path.join(d, "f"), b"")
    c.st("file gets dir group", os.path.join(d, "f"))
    c.as_user("u1", "mkdir", os.mkdir, os.path.join(d, "sub"))
    c.st("subdir inherits setgid", os.path.join(d, "sub"))


@case
def sticky_dir(c):
    d = c.p("t")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    c.st("sticky", d)
    for n in ("a", "b", "c", "e"):
        c.as_user("u1", "create " + n, write_file, os.path.join(d, n), b"u1")
    c.as_user("u2", "create own", write_file, os.path.join(d, "mine"), b"u2")
    c.as_user("u2", "unlink other's", os.unlink, os.path.join(d, "a"))
    c.as_user("u2", "rename other's", os.rename, os.path.join(d, "a"), os.path.join(d, "z"))
    c.as_user("u2", "rename own over other's", os.rename, os.path.join(d, "mine"), os.path.join(d, "b"))
    c.as_user("u1", "rename own over u2's", os.rename, os.path.join(d, "e"), os.path.join(d, "mine"))
    c.as_user("u1", "unlink own", os.unlink, os.path.join(d, "a"))
    c.do("root unlinks u1's", os.unlink, os.path.join(d, "c"))
    os.chown(d, USERS["u2"][0], 0)
    c.as_user("u2", "dir owner unlinks u1's", os.unlink, os.path.join(d, "b"))
    c.do("left", lambda: sorted(os.listdir(d)))


@case
def chmod_rules(c):
    u1, g1 = USERS["u1"][0], USERS["u1"][1]
    f = c.p("f")
    _mk(f, mode=0o644, uid=u1, gid=g1)
    c.as_user("u2", "chmod by non-owner", os.chmod, f, 0o777)
    c.as_user("u1", "chmod by owner", os.chmod, f, 0o600)
    c.st("mode", f)
    os.chown(f, u1, USERS["u2"][1])
    c.as_user("u1", "owner sets setgid, not in group", os.chmod, f, 0o2755)
    c.st("setgid cleared", f)
    os.chown(f, u1, g1)
    c.as_user("u1", "owner sets setgid, in group", os.chmod, f, 0o2755)
    c.st("setgid kept", f)
    c.do("root chmod 7777", os.chmod, f, 0o7777)
    c.st("all bits", f)
    os.symlink("f", c.p("s"))
    c.do("chmod via symlink follows", os.chmod, c.p("s"), 0o640)
    c.st("target mode", f)
    c.do("chmod missing", os.chmod, c.p("nope"), 0o644)


@case
def chown_rules(c):
    u1, g1 = USERS["u1"][0], USERS["u1"][1]
    gshared = USERS["u1"][2][1]
    f = c.p("f")
    _mk(f, mode=0o644, uid=u1, gid=g1)
    c.as_user("u1", "give away to u2", os.chown, f, USERS["u2"][0], -1)
    c.as_user("u1", "chgrp to member group", os.chown, f, -1, gshared)
    c.st("group changed", f)
    c.as_user("u1", "chgrp to non-member group", os.chown, f, -1, USERS["u2"][1])
    c.as_user("u2", "chgrp by non-owner", os.chown, f, -1, gshared)
    c.do("root chown", os.chown, f, USERS["u2"][0], USERS["u2"][1])
    c.st("owner changed", f)
    os.chmod(f, 0o6755)
    c.do("root chown of setuid file", os.chown, f, u1, g1)
    c.st("setuid/setgid cleared by chown", f)
    os.chmod(f, 0o6755)
    c.as_user("u1", "owner chgrp of setuid file", os.chown, f, -1, gshared)
    c.st("bits after owner chgrp", f)
    os.symlink("f", c.p("s"))
    c.do("lchown symlink", os.chown, c.p("s"), USERS["u2"][0], USERS["u2"][1], follow_symlinks=False)
    c.st("symlink owner", c.p("s"), follow=False)
    c.st("target owner unchanged", f)


@case
def write_clears_setuid(c):
    f = c.p("f")
    _mk(f, mode=0o6777)
    c.as_user("u1", "write by other user", lambda: os.close(os.open(f, os.O_WRONLY)) or write_file(f, b"new"))
    c.st("setuid bit cleared", f)
    _mk(c.p("g"), mode=0o4777)
    c.as_user("u1", "truncate by other user", os.truncate, c.p("g"), 0)
    c.st("setuid bit cleared by truncate", c.p("g"))


@case
def access_checks(c):
    u1, g1 = USERS["u1"][0], USERS["u1"][1]
    modes = {"r": os.R_OK, "w": os.W_OK, "x": os.X_OK, "f": os.F_OK}
    for mode in (0o000, 0o400, 0o200, 0o100, 0o070, 0o007, 0o755, 0o644):
        f = c.p("f%o" % mode)
        _mk(f, mode=mode, uid=u1, gid=g1)
        for name, bit in modes.items():
            c.as_user("u1", "access %s %o" % (name, mode), os.access, f, bit)
            c.as_user("u2", "access %s %o" % (name, mode), os.access, f, bit)
        c.do("root x %o" % mode, os.access, f, os.X_OK)
        c.do("root w %o" % mode, os.access, f, os.W_OK)
    c.do("missing", os.access, c.p("nope"), os.F_OK)


@case
def utime_rules(c):
    f = c.p("f")
    _mk(f, mode=0o666)
    c.as_user("u1", "utime now with write permission", os.utime, f, None)
    c.as_user("u1", "utime explicit as non-owner", os.utime, f, (1, 1))
    _mk(c.p("g"), mode=0o644)
    c.as_user("u1", "utime now without write permission", os.utime, c.p("g"), None)
    os.chown(c.p("g"), USERS["u1"][0], -1)
    c.as_user("u1", "owner sets explicit", os.utime, c.p("g"), (5, 6))
    c.do("times", lambda: (os.stat(c.p("g")).st_atime, os.stat(c.p("g")).st_mtime))


@case
def xattrs(c):
    f = c.p("f")
    write_file(f, b"x")
    c.do("set", os.setxattr, f, "user.a", b"1")
    c.do("get", os.getxattr, f, "user.a")
    c.do("set empty", os.setxattr, f, "user.empty", b"")
    c.do("get empty", os.getxattr, f, "user.empty")
    c.do("set 1000 bytes", os.setxattr, f, "user.mid", b"m" * 1000)
    c.do("get 1000 bytes", lambda: os.getxattr(f, "user.mid") == b"m" * 1000)
    c.do("remove 1000 bytes", os.removexattr, f, "user.mid")
    c.do("set 4000 bytes", os.setxattr, f, "user.big", b"v" * 4000)
    c.do("get big", lambda: len(os.getxattr(f, "user.big")))
    c.do("list", lambda: sorted(x for x in os.listxattr(f) if x.startswith("user.")))
    c.do("CREATE existing", os.setxattr, f, "user.a", b"2", os.XATTR_CREATE)
    c.do("REPLACE missing", os.setxattr, f, "user.zz", b"2", os.XATTR_REPLACE)
    c.do("REPLACE existing", os.setxattr, f, "user.a", b"3", os.XATTR_REPLACE)
    c.do("get replaced", os.getxattr, f, "user.a")
    c.do("get missing", os.getxattr, f, "user.none")
    c.do("remove", os.removexattr, f, "user.a")
    c.do("remove missing", os.removexattr, f, "user.a")
    c.do("unknown namespace", os.setxattr, f, "bogus.a", b"1")
    os.mkdir(c.p("d"))
    c.do("on dir", os.setxattr, c.p("d"), "user.d", b"dir")
    c.do("get on dir", os.getxattr, c.p("d"), "user.d")
    os.symlink("f", c.p("s"))
    c.do("user.* on symlink", os.setxattr, c.p("s"), "user.s", b"1", follow_symlinks=False)
    os.chmod(f, 0o644)
    c.as_user("u1", "set without write permission", os.setxattr, f, "user.u", b"1")
    c.as_user("u1", "get with read permission", os.getxattr, f, "user.big")
    os.link(f, c.p("h"))
    c.do("via hard link", lambda: len(os.getxattr(c.p("h"), "user.big")))
    c.do("survives rename", lambda: os.rename(f, c.p("f2")) or os.getxattr(c.p("f2"), "user.empty"))


@case
def locks(c):
    f = c.p("f")
    write_file(f, b"x" * 100)
    fd = os.open(f, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        out = []
        fd2 = os.open(f, os.O_RDWR)
        for name, fn in (("flock", lambda: fcntl.flock(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB)),
                         ("posix overlapping", lambda: fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 5)),
                         ("posix disjoint", lambda: fcntl.lockf(fd2, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 50))):
            try:
                fn()
                out.append(name + ":ok")
            except OSError as e:
                out.append(name + ":" + ("EAGAIN" if e.errno in (11, 13) else str(e.errno)))
        os.write(w, " ".join(out).encode())
        os._exit(0)
    os.close(w)
    c.rec("lock conflicts seen by another process", os.read(r, 1000).decode())
    os.close(r)
    os.waitpid(pid, 0)
    os.close(fd)


@case
def mmap_shared(c):
    f = c.p("f")
    write_file(f, b"\0" * 8192)
    fd = os.open(f, os.O_RDWR)
    m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m[100:105] = b"hello"
    m.flush()
    c.do("read() sees mmap write", os.pread, fd, 5, 100)
    os.pwrite(fd, b"world", 200)
    c.do("mmap sees write()", lambda: m[200:205])
    m.close()
    p = mmap.mmap(fd, 4096, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    p[0:3] = b"abc"
    c.do("private mapping not written back", os.pread, fd, 3, 0)
    p.close()
    os.close(fd)


@case
def statfs_sanity(c):
    s = os.statvfs(c.d)
    c.rec("bsize > 0", str(s.f_bsize > 0 and s.f_frsize > 0))
    c.rec("blocks >= bfree >= bavail", str(s.f_blocks >= s.f_bfree >= s.f_bavail))
    c.rec("files >= ffree", str(s.f_files >= s.f_ffree))
    c.rec("namemax", str(s.f_namemax))
    fd = os.open(c.d, os.O_RDONLY)
    c.rec("fstatvfs agrees on bsize", str(os.fstatvfs(fd).f_bsize == s.f_bsize))
    os.close(fd)


@case
def noatime_and_flags(c):
    f = c.p("f")
    _mk(f, mode=0o644)
    c.as_user("u1", "O_NOATIME on other's file", os.open, f, os.O_RDONLY | os.O_NOATIME)
    c.do("O_NOATIME as root", lambda: os.close(os.open(f, os.O_RDONLY | os.O_NOATIME)))
    c.do("O_DIRECT accepted", lambda: os.close(os.open(f, os.O_RDONLY | os.O_DIRECT)))
    c.do("O_SYNC write", lambda: os.close(os.open(f, os.O_WRONLY | os.O_SYNC)))
    c.do("O_RDONLY|O_TRUNC truncates", lambda: os.close(os.open(f, os.O_RDONLY | os.O_TRUNC)) or os.stat(f).st_size)
    t0 = time.time()
    c.rec("clock sane", str(t0 > 1e9))


@case
def search_permission(c):
    os.makedirs(c.p("a", "b"))
    write_file(c.p("a", "b", "f"), b"deep")
    os.chmod(c.p("a"), 0o700)
    c.as_user("u1", "path through 0700 dir", read_file, c.p("a", "b", "f"))
    c.as_user("u1", "stat through 0700 dir", os.stat, c.p("a", "b"))
    os.chmod(c.p("a"), 0o711)
    c.as_user("u1", "path through 0711 dir", read_file, c.p("a", "b", "f"))
    c.as_user("u1", "list 0711 dir", os.listdir, c.p("a"))
    os.chmod(c.p("a"), 0o755)
    os.chmod(c.p("a", "b"), 0o744)
    c.as_user("u1", "list 0744 dir", lambda: sorted(os.listdir(c.p("a", "b"))))
    c.as_user("u1", "open in 0744 dir", read_file, c.p("a", "b", "f"))


@case
def rename_permissions(c):
    u1 = USERS["u1"]
    os.mkdir(c.p("src"), 0o777)
    os.mkdir(c.p("dst"), 0o777)
    os.chmod(c.p("src"), 0o777)
    os.chmod(c.p("dst"), 0o777)
    os.mkdir(c.p("src", "d"))      # root's directory, mode 0755
    write_file(c.p("src", "f"), b"")
    c.as_user("u1", "move other's file between writable dirs", os.rename, c.p("src", "f"), c.p("dst", "f"))
    c.as_user("u1", "rename other's dir in same parent", os.rename, c.p("src", "d"), c.p("src", "d2"))
    c.as_user("u1", "move other's dir to new parent (needs w on it)", os.rename, c.p("src", "d2"), c.p("dst", "d"))
    os.mkdir(c.p("src", "mine"))
    os.chown(c.p("src", "mine"), u1[0], u1[1])
    c.as_user("u1", "move own dir to new parent", os.rename, c.p("src", "mine"), c.p("dst", "mine"))
    os.chmod(c.p("src"), 0o755)
    c.as_user("u1", "rename out of non-writable dir", os.rename, c.p("dst", "f"), c.p("src", "g"))
    c.as_user("u1", "unlink in non-writable dir", os.unlink, c.p("src", "d2"))
    c.do("left", lambda: (sorted(os.listdir(c.p("src"))), sorted(os.listdir(c.p("dst")))))


@case
def protected_links(c):
    d = c.p("t")
    os.mkdir(d)
    os.chmod(d, 0o1777)
    _mk(c.p("rootfile"), mode=0o600)
    c.as_user("u1", "hard link to other's unreadable file", os.link, c.p("rootfile"), os.path.join(d, "hl"))
    c.as_user("u1", "symlink in sticky dir", os.symlink, c.p("rootfile"), os.path.join(d, "sl"))
    os.chmod(c.p("rootfile"), 0o644)
    c.as_user("u2", "follow other's symlink in sticky dir", read_file, os.path.join(d, "sl"))
    c.as_user("u1", "follow own symlink in sticky dir", read_file, os.path.join(d, "sl"))
    c.do("root follows u1's symlink in sticky dir", read_file, os.path.join(d, "sl"))


@case
def many_entries(c):
    d = c.p("many")
    os.mkdir(d)
    for i in range(600):
        write_file(os.path.join(d, "file-%04d" % i), b"%d" % i)
    for i in range(0, 600, 3):
        os.unlink(os.path.join(d, "file-%04d" % i))
    for i in range(50):
        os.mkdir(os.path.join(d, "dir-%02d" % i))
    names = sorted(os.listdir(d))
    c.rec("count", str(len(names)))
    c.rec("first/last", "%s %s" % (names[0], names[-1]))
    c.st("dir nlink", d)
    c.do("scandir types", lambda: sorted({(e.name[:3], e.is_dir()) for e in os.scandir(d)}))
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    c.do("fsync dir", os.fsync, fd)
    os.close(fd)
    c.do("content sample", read_file, os.path.join(d, "file-0599"))


@case
def open_create_mode_and_fds(c):
    f = c.p("f")
    c.do("create 0600", lambda: os.close(os.open(f, os.O_CREAT | os.O_WRONLY, 0o600)))
    c.do("O_CREAT again with 0777", lambda: os.close(os.open(f, os.O_CREAT | os.O_WRONLY, 0o777)))
    c.st("mode unchanged", f)
    fd = os.open(f, os.O_RDONLY)
    c.do("posix_fallocate on O_RDONLY", os.posix_fallocate, fd, 0, 10)
    c.do("fsync on O_RDONLY", os.fsync, fd)
    os.close(fd)
    fd = os.open(f, os.O_WRONLY)
    c.do("pwrite negative offset", os.pwrite, fd, b"x", -1)
    os.close(fd)
    fd = os.open(f, os.O_RDWR)
    os.lseek(fd, 10000, os.SEEK_SET)
    c.do("write after seek past end", os.write, fd, b"end")
    c.do("size", lambda: os.fstat(fd).st_size)
    c.do("gap reads zeros", lambda: os.pread(fd, 100, 5000) == b"\0" * 100)
    fd2 = os.open(f, os.O_RDONLY)
    os.pwrite(fd, b"shared", 0)
    c.do("second fd sees write", os.pread, fd2, 6, 0)
    os.close(fd2)
    os.close(fd)
    c.do("O_WRONLY|O_RDWR", lambda: os.close(os.open(f, os.O_WRONLY | os.O_RDWR)))
