"""Conformance cases: files, open flags, rename, links, names, symlinks,
times. Each case gets a fresh directory (c.d) and records its steps."""

import os
import stat

from lib import (RENAME_EXCHANGE, RENAME_NOREPLACE, read_file, renameat2,
                 write_file)

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def open_excl(c):
    f = c.p("f")
    c.do("create O_EXCL", lambda: os.close(os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
    c.do("again O_EXCL", lambda: os.close(os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
    os.symlink("dangling", c.p("l"))
    c.do("O_EXCL on dangling symlink", lambda: os.close(os.open(c.p("l"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))
    c.do("O_CREAT through dangling symlink", lambda: os.close(os.open(c.p("l"), os.O_CREAT | os.O_WRONLY, 0o600)))
    c.st("target created", c.p("dangling"))


@case
def open_errors(c):
    os.mkdir(c.p("d"))
    write_file(c.p("f"), b"x")
    c.do("missing", os.open, c.p("nope"), os.O_RDONLY)
    c.do("O_CREAT in missing dir", os.open, c.p("nodir", "f"), os.O_CREAT | os.O_WRONLY, 0o644)
    c.do("dir O_WRONLY", os.open, c.p("d"), os.O_WRONLY)
    c.do("dir O_RDWR", os.open, c.p("d"), os.O_RDWR)
    c.do("O_DIRECTORY on file", os.open, c.p("f"), os.O_RDONLY | os.O_DIRECTORY)
    c.do("file as dir component", os.open, c.p("f", "x"), os.O_RDONLY)
    c.do("O_CREAT on existing dir", os.open, c.p("d"), os.O_CREAT | os.O_WRONLY, 0o644)
    fd = os.open(c.p("f"), os.O_RDONLY)
    c.do("write on O_RDONLY fd", os.write, fd, b"y")
    c.do("ftruncate on O_RDONLY fd", os.ftruncate, fd, 0)
    os.close(fd)
    fd = os.open(c.p("f"), os.O_WRONLY)
    c.do("read on O_WRONLY fd", os.read, fd, 1)
    os.close(fd)


@case
def open_trunc_append(c):
    f = c.p("f")
    write_file(f, b"0123456789")
    os.utime(f, (1000000000, 1000000000))
    c.changed("O_TRUNC", f, lambda: os.close(os.open(f, os.O_WRONLY | os.O_TRUNC)))
    c.st("after O_TRUNC", f)
    write_file(f, b"abc")
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    c.do("append write", os.write, fd, b"def")
    c.do("pwrite at 0 on O_APPEND (Linux appends)", os.pwrite, fd, b"gh", 0)
    os.close(fd)
    c.do("content", read_file, f)
    fd = os.open(f, os.O_RDWR | os.O_APPEND)
    os.write(fd, b"!")
    c.do("offset after append", os.lseek, fd, 0, os.SEEK_CUR)
    os.close(fd)


@case
def umask_modes(c):
    old = os.umask(0o022)
    try:
        write_file(c.p("a"), b"", 0o777)
        os.mkdir(c.p("d1"), 0o777)
        os.umask(0)
        write_file(c.p("b"), b"", 0o777)
        os.mkdir(c.p("d2"), 0o1777)
        os.umask(0o077)
        write_file(c.p("e"), b"", 0o666)
    finally:
        os.umask(old)
    for n in ("a", "d1", "b", "d2", "e"):
        c.st(n, c.p(n))


@case
def truncate_rules(c):
    f = c.p("f")
    write_file(f, b"x" * 5000)
    c.do("grow", os.truncate, f, 100000)
    c.do("tail is zeros", lambda: read_file(f)[5000:] == b"\0" * 95000)
    c.do("shrink", os.truncate, f, 10)
    c.st("size", f)
    c.do("negative", os.truncate, f, -1)
    os.mkdir(c.p("d"))
    c.do("dir", os.truncate, c.p("d"), 0)
    c.do("missing", os.truncate, c.p("nope"), 0)
    c.do("huge sparse 4GiB+1", os.truncate, f, (4 << 30) + 1)
    fd = os.open(f, os.O_RDWR)
    c.do("write at 5GiB", os.pwrite, fd, b"z", 5 << 30)
    c.do("read at 5GiB", os.pread, fd, 2, 5 << 30)
    c.do("read in hole", os.pread, fd, 4, 3 << 30)
    os.close(fd)
    c.st("size", f)


@case
def unlinked_open_file(c):
    f = c.p("f")
    write_file(f, b"hello")
    fd = os.open(f, os.O_RDWR)
    c.do("unlink", os.unlink, f)
    c.do("listdir", lambda: sorted(os.listdir(c.d)))
    c.do("read after unlink", os.pread, fd, 10, 0)
    c.do("write after unlink", os.pwrite, fd, b" world", 5)
    c.do("read again", os.pread, fd, 20, 0)
    c.do("fstat nlink", lambda: os.fstat(fd).st_nlink)
    c.do("fstat size", lambda: os.fstat(fd).st_size)
    c.do("ftruncate", os.ftruncate, fd, 2)
    c.do("fsync", os.fsync, fd)
    c.do("read truncated", os.pread, fd, 20, 0)
    os.close(fd)
    c.do("stat after close", os.stat, f)


@case
def rename_files(c):
    write_file(c.p("a"), b"A")
    write_file(c.p("b"), b"B")
    c.do("over file", os.rename, c.p("a"), c.p("b"))
    c.do("content", read_file, c.p("b"))
    c.do("old gone", os.stat, c.p("a"))
    c.do("missing source", os.rename, c.p("a"), c.p("x"))
    c.do("to self", os.rename, c.p("b"), c.p("b"))
    os.link(c.p("b"), c.p("b2"))
    c.do("between two links of one file", os.rename, c.p("b"), c.p("b2"))
    c.do("both links stay", lambda: sorted(os.listdir(c.d)))
    fd = os.open(c.p("b"), os.O_RDWR)
    c.do("rename open file", os.rename, c.p("b"), c.p("c"))
    os.write(fd, b"!")
    os.close(fd)
    c.do("write via old fd lands", read_file, c.p("c"))
    c.st("nlink after rename", c.p("c"))


@case
def rename_dirs(c):
    for d in ("d1", "d2", "e", "full", "full/x"):
        os.mkdir(c.p(d))
    write_file(c.p("f"), b"f")
    c.do("file over dir", os.rename, c.p("f"), c.p("e"))
    c.do("dir over file", os.rename, c.p("e"), c.p("f"))
    c.do("dir over non-empty dir", os.rename, c.p("d1"), c.p("full"))
    c.do("dir over empty dir", os.rename, c.p("d1"), c.p("e"))
    c.do("names", lambda: sorted(os.listdir(c.d)))
    c.do("dir into own subdir", os.rename, c.p("full"), c.p("full", "x", "y"))
    c.do("dir onto own subdir", os.rename, c.p("full"), c.p("full", "x"))
    c.do("subdir onto ancestor", os.rename, c.p("full", "x"), c.p("full"))
    c.do("rename '.'", os.rename, c.p("full", "."), c.p("z"))
    c.do("trailing slash on file", os.rename, c.p("f") + "/", c.p("g"))
    c.st("parent nlink", c.d)


@case
def rename_dir_nlinks(c):
    for d in ("p1", "p2", "p1/sub"):
        os.mkdir(c.p(d))
    c.st("p1 before", c.p("p1"))
    c.st("p2 before", c.p("p2"))
    c.do("move subdir", os.rename, c.p("p1", "sub"), c.p("p2", "sub"))
    c.st("p1 after", c.p("p1"))
    c.st("p2 after", c.p("p2"))
    c.do("'..' is new parent", lambda: os.stat(c.p("p2", "sub", "..")).st_ino == os.stat(c.p("p2")).st_ino)


@case
def renameat2_flags(c):
    write_file(c.p("a"), b"A")
    write_file(c.p("b"), b"B")
    os.mkdir(c.p("d"))
    c.do("NOREPLACE onto existing", renameat2, c.p("a"), c.p("b"), RENAME_NOREPLACE)
    c.do("NOREPLACE onto new", renameat2, c.p("a"), c.p("n"), RENAME_NOREPLACE)
    c.do("EXCHANGE files", renameat2, c.p("n"), c.p("b"), RENAME_EXCHANGE)
    c.do("n", read_file, c.p("n"))
    c.do("b", read_file, c.p("b"))
    c.do("EXCHANGE file and dir", renameat2, c.p("b"), c.p("d"), RENAME_EXCHANGE)
    c.st("b is dir", c.p("b"))
    c.st("d is file", c.p("d"))
    c.do("EXCHANGE with missing", renameat2, c.p("b"), c.p("missing"), RENAME_EXCHANGE)
    c.do("both flags", renameat2, c.p("b"), c.p("d"), RENAME_EXCHANGE | RENAME_NOREPLACE)


@case
def file_links(c):
    f = c.p("f")
    write_file(f, b"data")
    c.st("one", f)
    c.do("link", os.link, f, c.p("l1"))
    c.do("link 2", os.link, c.p("l1"), c.p("l2"))
    c.st("three", f)
    c.do("link onto existing", os.link, f, c.p("l1"))
    c.do("link missing", os.link, c.p("nope"), c.p("l3"))
    os.mkdir(c.p("d"))
    c.do("link a directory", os.link, c.p("d"), c.p("dl"))
    c.do("unlink one", os.unlink, c.p("l1"))
    c.st("two", c.p("l2"))
    with open(c.p("l2"), "ab") as fh:
        fh.write(b"+")
    c.do("write via link visible", read_file, f)
    os.symlink("f", c.p("s"))
    c.do("link to symlink (no follow)", os.link, c.p("s"), c.p("sl"), follow_symlinks=False)
    c.st("hard-linked symlink", c.p("sl"), follow=False)


@case
def dir_links(c):
    d = c.p("d")
    c.do("mkdir", os.mkdir, d)
    c.st("new dir", d)
    os.mkdir(c.p("d", "a"))
    os.mkdir(c.p("d", "b"))
    write_file(c.p("d", "f"), b"")
    c.st("two subdirs", d)
    c.do("rmdir non-empty", os.rmdir, d)
    c.do("rmdir file", os.rmdir, c.p("d", "f"))
    c.do("unlink dir", os.unlink, c.p("d", "a"))
    c.do("rmdir '.'", os.rmdir, c.p("d", "a", "."))
    c.do("rmdir a", os.rmdir, c.p("d", "a"))
    c.st("one subdir", d)
    c.do("mkdir existing", os.mkdir, c.p("d", "b"))
    c.do("mkdir over file", os.mkdir, c.p("d", "f"))
    c.do("mkdir in missing", os.mkdir, c.p("x", "y"))
    c.do("readdir", lambda: sorted((e.name, e.is_dir(), e.is_file()) for e in os.scandir(d)))


@case
def long_names(c):
    n255 = "n" * 255
    n256 = "n" * 256
    u255 = "\u00e9" * 127 + "x"  # 255 bytes of UTF-8
    c.do("create 255", write_file, c.p(n255), b"x")
    c.st("stat 255", c.p(n255))
    c.do("create 255 utf8", write_file, c.p(u255), b"y")
    c.do("listdir", lambda: sorted(len(x.encode()) for x in os.listdir(c.d)))
    c.do("create 256", write_file, c.p(n256), b"x")
    c.do("mkdir 256", os.mkdir, c.p(n256))
    c.do("stat 256", os.stat, c.p(n256))
    c.do("rename to 256", os.rename, c.p(n255), c.p(n256))
    c.do("symlink named 256", os.symlink, "t", c.p(n256))
    c.do("mkdir 255", os.mkdir, c.p("d" * 255))
    c.do("nested 255", write_file, c.p("d" * 255, "e" * 255), b"z")
    c.do("rename 255 -> 255", os.rename, c.p(n255), c.p("m" * 255))
    c.do("read renamed", read_file, c.p("m" * 255))
    c.do("link 255", os.link, c.p("m" * 255), c.p("k" * 255))
    c.st("nlink", c.p("k" * 255))
    c.do("unlink 255", os.unlink, c.p("k" * 255))


@case
def symlinks(c):
    write_file(c.p("t"), b"target")
    c.do("symlink", os.symlink, "t", c.p("s"))
    c.do("readlink", os.readlink, c.p("s"))
    c.st("lstat", c.p("s"), follow=False)
    c.st("stat follows", c.p("s"))
    c.do("read through", read_file, c.p("s"))
    c.do("symlink existing", os.symlink, "x", c.p("s"))
    c.do("dangling", os.symlink, "nowhere", c.p("dang"))
    c.do("stat dangling", os.stat, c.p("dang"))
    c.do("readlink file", os.readlink, c.p("t"))
    long_target = "x" * 1000
    c.do("long target", os.symlink, long_target, c.p("longt"))
    c.do("readlink long", lambda: len(os.readlink(c.p("longt"))))
    c.do("O_NOFOLLOW", os.open, c.p("s"), os.O_RDONLY | os.O_NOFOLLOW)
    c.do("unlink symlink", os.unlink, c.p("s"))
    c.st("target stays", c.p("t"))
    os.mkdir(c.p("dir"))
    os.symlink("dir", c.p("sd"))
    c.do("rmdir through symlink", os.rmdir, c.p("sd"))
    c.do("listdir via symlink", lambda: os.listdir(c.p("sd")))


@case
def symlink_loops(c):
    os.symlink("b", c.p("a"))
    os.symlink("a", c.p("b"))
    os.symlink("self", c.p("self"))
    c.do("open loop", os.open, c.p("a"), os.O_RDONLY)
    c.do("stat loop", os.stat, c.p("self"))
    c.do("path through loop", os.stat, c.p("a", "x"))
    c.do("lstat loop ok", lambda: stat.S_ISLNK(os.lstat(c.p("a")).st_mode))
    write_file(c.p("end"), b"e")
    prev = "end"
    for i in range(40):  # a chain of 40 links resolves, 41 does not
        os.symlink(prev, c.p("c%d" % i))
        prev = "c%d" % i
    c.do("chain of 40", read_file, c.p("c39"))
    os.symlink("c39", c.p("c40"))
    c.do("chain of 41", read_file, c.p("c40"))


@case
def times_file(c):
    f = c.p("f")
    write_file(f, b"abc")
    os.utime(f, ns=(1234567890123456789, 1234567891987654321))
    c.do("utime exact", lambda: (os.stat(f).st_atime_ns, os.stat(f).st_mtime_ns))
    c.changed("write", f, lambda: write_file(f, b"more"))
    c.changed("write", f, lambda: write_file(f, b"again"), field="ctime")
    before = os.stat(f).st_mtime_ns
    c.changed("chmod", f, lambda: os.chmod(f, 0o600), field="ctime")
    c.do("chmod keeps mtime", lambda: os.stat(f).st_mtime_ns == before)
    c.changed("truncate", f, lambda: os.truncate(f, 1))
    c.changed("link", f, lambda: os.link(f, c.p("l")), field="ctime")
    c.changed("rename", c.p("l"), lambda: os.rename(c.p("l"), c.p("m")), field="ctime", after=c.p("m"))
    c.changed("utime(None)", c.p("m"), lambda: os.utime(c.p("m")), field="ctime")
    fd = os.open(c.p("m"), os.O_RDONLY)
    c.changed("read does not change mtime", c.p("m"), lambda: os.read(fd, 10))
    os.close(fd)


@case
def times_dir(c):
    d = c.p("d")
    os.mkdir(d)
    os.mkdir(c.p("e"))
    c.changed("create child", d, lambda: write_file(c.p("d", "f"), b""))
    c.changed("create child", d, lambda: write_file(c.p("d", "g"), b""), field="ctime")
    c.changed("rename child within", d, lambda: os.rename(c.p("d", "f"), c.p("d", "f2")))
    c.changed("rename child out (source)", d, lambda: os.rename(c.p("d", "f2"), c.p("e", "f2")))
    c.changed("rename child in (target)", c.p("e"), lambda: os.rename(c.p("d", "g"), c.p("e", "g")))
    c.changed("unlink child", c.p("e"), lambda: os.unlink(c.p("e", "g")))
    c.changed("mkdir child", d, lambda: os.mkdir(c.p("d", "s")))
    c.changed("rmdir child", d, lambda: os.rmdir(c.p("d", "s")))
    c.changed("write to child does not touch dir", c.p("e"),
              lambda: write_file(c.p("e", "f2"), b"x" * 10))
    c.changed("chmod child does not touch dir", c.p("e"), lambda: os.chmod(c.p("e", "f2"), 0o600))


@case
def fifo_nodes(c):
    c.do("mkfifo", os.mkfifo, c.p("p"), 0o640)
    c.st("fifo", c.p("p"))
    c.do("mkfifo existing", os.mkfifo, c.p("p"))
    c.do("open read nonblock", lambda: os.close(os.open(c.p("p"), os.O_RDONLY | os.O_NONBLOCK)))
    c.do("open write nonblock, no reader", os.open, c.p("p"), os.O_WRONLY | os.O_NONBLOCK)
    r = os.open(c.p("p"), os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(c.p("p"), os.O_WRONLY | os.O_NONBLOCK)
    os.write(w, b"through the pipe")
    c.do("pipe data", os.read, r, 100)
    os.close(w)
    os.close(r)
    c.do("mknod fifo", os.mknod, c.p("q"), 0o600 | stat.S_IFIFO)
    c.st("mknod fifo", c.p("q"))
    c.do("rename fifo", os.rename, c.p("q"), c.p("q2"))
    c.do("unlink fifo", os.unlink, c.p("q2"))


@case
def sparse_and_fallocate(c):
    f = c.p("f")
    fd = os.open(f, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"a" * 4096, 0)
    os.pwrite(fd, b"b" * 4096, 1 << 20)
    c.do("SEEK_DATA at 0", os.lseek, fd, 0, os.SEEK_DATA)
    c.do("SEEK_HOLE within size", lambda: 0 < os.lseek(fd, 0, os.SEEK_HOLE) <= os.fstat(fd).st_size)
    c.do("SEEK_DATA past EOF", os.lseek, fd, 2 << 20, os.SEEK_DATA)
    c.do("SEEK_HOLE past EOF", os.lseek, fd, 2 << 20, os.SEEK_HOLE)
    c.do("hole reads zeros", lambda: os.pread(fd, 8, 8192) == b"\0" * 8)
    c.do("fallocate keep size", os.posix_fallocate, fd, 0, 1)
    c.do("posix_fallocate extends", os.posix_fallocate, fd, 0, 3 << 20)
    c.do("size", lambda: os.fstat(fd).st_size)
    c.do("extension reads zeros", lambda: os.pread(fd, 16, (2 << 20) + 5) == b"\0" * 16)
    c.do("ftruncate back", os.ftruncate, fd, 5000)
    c.do("data kept", lambda: os.pread(fd, 4096, 0) == b"a" * 4096)
    c.do("fsync", os.fsync, fd)
    c.do("fdatasync", os.fdatasync, fd)
    os.close(fd)
    dfd = os.open(c.d, os.O_RDONLY | os.O_DIRECTORY)
    c.do("fsync directory", os.fsync, dfd)
    os.close(dfd)
