#!/usr/bin/env python3
"""cipherfs POSIX conformance: runs every case on a reference directory
(plain ext4) and on a test directory (a cipherfs mount); the two must agree
on every step's result and errno.

  run.py --ref DIR --test DIR [-k SUBSTRING] [--list] [-v] [--no-known]

Known differences (known_differences.txt beside this file: case, step label
and the reason, one per line) are printed as KNOWN with their reason and do
not fail the run; --no-known treats them as differences. A known difference
that no longer occurs is reported so the list can shrink.

Run as root (cases switch to the test users cfs_u1/cfs_u2, created when
missing). The test directory must be reachable by those users: a cipherfs
mount made with -o allow_other (which implies default_permissions).
Exit: 0 all cases agree; 1 a difference (or a case broke); 2 usage/setup.
"""

import argparse
import os
import shutil
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases_ns  # noqa: E402
import cases_perm  # noqa: E402
from lib import Case, ensure_users  # noqa: E402

ALL_CASES = cases_ns.CASES + cases_perm.CASES


def run_case(fn, root):
    """Runs one case in a fresh directory below root; returns its steps."""
    c = Case(root, fn.__name__)
    if os.path.lexists(c.d):
        shutil.rmtree(c.d)
    os.mkdir(c.d)
    os.chmod(c.d, 0o755)
    old_umask = os.umask(0o022)
    try:
        fn(c)
    except Exception as e:  # a case that breaks is itself a finding
        c.rec("case raised", "%s: %s (line %d)" % (
            type(e).__name__, e, traceback.extract_tb(e.__traceback__)[-1].lineno))
    finally:
        os.umask(old_umask)
    shutil.rmtree(c.d, ignore_errors=True)
    return c.steps


def compare(ref, test):
    """Returns (step label, description) for every difference."""
    diffs = []
    for i in range(max(len(ref), len(test))):
        r = ref[i] if i < len(ref) else ("<missing>", "")
        t = test[i] if i < len(test) else ("<missing>", "")
        if r != t:
            diffs.append((r[0], "  step %d %s\n    ref : %s\n    test: %s" % (
                i + 1, r[0] if r[0] == t[0] else r[0] + " | " + t[0], r[1], t[1])))
    return diffs


def load_known(path):
    """{(case, step label): reason} from the known-differences file."""
    known = {}
    if not os.path.exists(path):
        return known
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            case_name, label, reason = line.split("\t", 2)
            known[(case_name, label)] = reason
    return known


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="reference directory (plain ext4)")
    ap.add_argument("--test", help="directory under test (a cipherfs mount)")
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("-v", action="store_true", help="print every step")
    ap.add_argument("--no-known", action="store_true", help="known differences fail too")
    a = ap.parse_args()
    known = {} if a.no_known else load_known(
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "known_differences.txt"))
    cases = [f for f in ALL_CASES if a.k in f.__name__]
    if a.list:
        for f in cases:
            print(f.__name__)
        return 0
    if not a.ref or not a.test:
        ap.error("--ref and --test are required")
    if os.geteuid() != 0:
        print("conformance: must run as root (cases switch users)", file=sys.stderr)
        return 2
    for d in (a.ref, a.test):
        if not os.path.isdir(d):
            print("conformance: %s is not a directory" % d, file=sys.stderr)
            return 2
    ensure_users()
    failed, with_known, steps = [], [], 0
    for fn in cases:
        ref = run_case(fn, a.ref)
        test = run_case(fn, a.test)
        steps += len(ref)
        diffs = compare(ref, test)
        expected = [d for d in diffs if (fn.__name__, d[0]) in known]
        diffs = [d for d in diffs if (fn.__name__, d[0]) not in known]
        for label, text in expected:
            print("KNOWN %-23s %s: %s" % (fn.__name__, label, known[(fn.__name__, label)]))
        if expected:
            with_known.append(fn.__name__)
        seen = {d[0] for d in expected}
        for (case_name, label) in known:
            if case_name == fn.__name__ and label not in seen:
                print("FIXED %-23s %s: no longer differs; remove it from known_differences.txt" % (
                    case_name, label))
        diffs = [text for _, text in diffs]
        broke = any(label == "case raised" for label, _ in ref)
        if diffs or broke:
            failed.append(fn.__name__)
            print("DIFF %-24s %d of %d steps differ%s" % (
                fn.__name__, len(diffs), len(ref), " (case raised on ref)" if broke else ""))
            for d in diffs:
                print(d)
            if broke and not diffs:
                print("  " + [v for label, v in ref if label == "case raised"][0])
        else:
            print("%s %-24s %d steps%s" % ("ok~ " if expected else "ok  ", fn.__name__, len(ref),
                                          ", %d known differences" % len(expected) if expected else ""))
        if a.v:
            for label, value in test:
                print("       %s -> %s" % (label, value))
    print("conformance: %d cases, %d steps; %d agree, %d differ%s; %d with known differences%s" % (
        len(cases), steps, len(cases) - len(failed), len(failed),
        (" (" + " ".join(failed) + ")") if failed else "",
        len(with_known), (" (" + " ".join(with_known) + ")") if with_known else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
