#!/usr/bin/env python3
"""The layering of src/ (DESIGN.md section 4), checked by `make check`.

Reads every .c and .h file under src/ as text (it runs and builds nothing)
and reports, as FILE:LINE: what, each place that breaks one of these rules:

  layers         a module includes a header of a higher layer, or of another
                 module of its own layer (LAYERS below: lowest first);
  placed         every folder under src/ and every file at its top is in
                 LAYERS, so a new module has to be placed before it counts;
  backend-header src/manager/ includes a provider header other than the
                 front (FRONT_HEADERS): a backend's header (provider/lxd.h,
                 anything in provider/<backend>/, ...);
  backend-name   src/manager/ spells a backend's name as a string literal
                 ("local", "lxd", ...): the manager never names a backend;
  internal       a <module>_internal.h is included from outside its folder.

Each rule is one test: the last line is "N passed, N failed" and the exit
status is non-zero when a rule has findings.

    check-layers.py [SRC_DIR]     check SRC_DIR (default: src/ of this tree)
    check-layers.py --self-test   check fake trees that must pass or fail
"""

import fnmatch
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import TOP, run_tests, summary  # noqa: E402

# Layers, lowest first: one line a layer, its words the modules in it. A
# module is a folder under src/ (its subfolders belong to it: provider/lxd/
# is provider) or "(top)", the files at the top of src/ named in TOP_FILES.
# A module may include its own headers and those of lower layers only.
# util is the floor everything stands on, so the "util, http" of DESIGN.md
# is util < http here: both stay below config.
LAYERS = """
util
http
config
store github runner webhook
provider queue
metrics
manager
reactive daemon
(top)
"""
TOP_FILES = ["main.c", "cmd_*.c", "cmd.h", "cmd_*.h", "control.h"]

# What the manager may include from provider/; the rest of provider/ is backends.
FRONT_HEADERS = {"provider/provider.h", "provider/provider_files.h"}
BACKEND_NAMES = {"local", "lxd", "openstack", "external", "memory"}
RULES = ["layers", "placed", "backend-header", "backend-name", "internal"]


def layer_table():
    """module -> layer number (0 lowest)."""
    table = {}
    for n, line in enumerate(ln for ln in LAYERS.splitlines() if ln.strip()):
        for module in line.split():
            table[module] = n
    return table


def module_of(rel):
    """The module of a path relative to src/, or None when it is not placed."""
    if "/" in rel:
        return rel.split("/", 1)[0]
    if any(fnmatch.fnmatchcase(rel, p) for p in TOP_FILES):
        return "(top)"
    return None


# One C token of interest at a time: comments (skipped), string and
# character literals, and preprocessor #include lines.
_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<include>^[ \t]*\#[ \t]*include[ \t]*(?P<q>["<])(?P<path>[^">\n]+)[">])
  | (?P<string>(?:u8|[uUL])?"(?P<text>(?:\\.|[^"\\\n])*)")
  | (?P<char>'(?:\\.|[^'\\\n])*')
""", re.S | re.M | re.X)


def scan(text):
    """Yield ("include", line, path, quoted) and ("string", line, text, None)."""
    for m in _TOKEN.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        if m.group("include"):
            yield "include", line, m.group("path"), m.group("q") == '"'
        elif m.group("string") is not None:
            yield "string", line, m.group("text"), None


def resolve(src, rel_dir, path, quoted, modules):
    """An include as a path relative to src/, or None when it is not ours
    (a system or generated header)."""
    if quoted:
        here = os.path.normpath(os.path.join(rel_dir, path))
        if not here.startswith("..") and os.path.isfile(os.path.join(src, here)):
            return here
    if os.path.isfile(os.path.join(src, path)):
        return os.path.normpath(path)
    if "/" in path and path.split("/", 1)[0] in modules:
        return os.path.normpath(path)  # a header of ours that is not there (yet)
    return None


def sources(src, table):
    """The .c and .h files under src (relative to it), and a "placed"
    finding for each folder or top file that is in no layer."""
    base = os.path.basename(os.path.normpath(src))
    files, found = [], []
    for entry in sorted(os.listdir(src)):
        full = os.path.join(src, entry)
        if os.path.isdir(full):
            if entry not in table:
                found.append(("placed", "%s/%s/" % (base, entry), 0,
                              "folder %s/ is in no layer of scripts/check-layers.py" % entry))
            for d, subdirs, names in os.walk(full):
                subdirs.sort()
                files += [os.path.relpath(os.path.join(d, n), src) for n in sorted(names)]
        else:
            files.append(entry)
            if entry.endswith((".c", ".h")) and module_of(entry) is None:
                found.append(("placed", "%s/%s" % (base, entry), 0,
                              "%s is in no layer of scripts/check-layers.py (TOP_FILES)" % entry))
    return [f for f in files if f.endswith((".c", ".h"))], found


def check_file(src, rel, table):
    """The findings of one file (rel: its path under src)."""
    me = module_of(rel)
    where = "%s/%s" % (os.path.basename(os.path.normpath(src)), rel)
    found = []
    with open(os.path.join(src, rel), errors="replace") as f:
        text = f.read()
    for kind, line, value, quoted in scan(text):
        if kind == "string":
            if me == "manager" and value in BACKEND_NAMES:
                found.append(("backend-name", where, line, 'names the backend "%s": the manager reaches '
                              "backends only through the provider front" % value))
            continue
        inc = resolve(src, os.path.dirname(rel), value, quoted, table)
        if inc is None:
            continue
        them = module_of(inc)
        if me in table and them in table and me != them:
            if table[them] > table[me]:
                found.append(("layers", where, line, "%s (layer %d) includes %s of %s, a higher layer (%d)"
                              % (me, table[me], inc, them, table[them])))
            elif table[them] == table[me]:
                found.append(("layers", where, line, "%s includes %s of %s, another module of its layer (%d)"
                              % (me, inc, them, table[me])))
        if me == "manager" and them == "provider" and inc not in FRONT_HEADERS:
            found.append(("backend-header", where, line, "includes the backend header %s (the manager "
                          "includes only %s)" % (inc, ", ".join(sorted(FRONT_HEADERS)))))
        if os.path.basename(inc).endswith("_internal.h") and os.path.dirname(inc) != os.path.dirname(rel):
            found.append(("internal", where, line, "includes %s from outside %s/"
                          % (inc, os.path.dirname(inc) or ".")))
    return found


def check(src):
    """Every finding in the tree at src: a list of (rule, file, line,
    message), file as src/... (line 0: the finding is about the file)."""
    table = layer_table()
    files, found = sources(src, table)
    for rel in files:
        found += check_file(src, rel, table)
    return found


def report(found):
    """Print the findings rule by rule; returns (passed, failed) rules."""
    passed = failed = 0
    for rule in RULES:
        mine = [f for f in found if f[0] == rule]
        if not mine:
            passed += 1
            print("ok - %s" % rule)
            continue
        failed += 1
        print("not ok - %s: %d finding%s" % (rule, len(mine), "" if len(mine) == 1 else "s"))
        for _, where, line, msg in mine:
            print("%s%s: %s" % (where, ":%d" % line if line else "", msg))
    return passed, failed


# ---- self-test: fake trees ---------------------------------------------------

GOOD = {
    "main.c": '#include "cmd.h"\n#include "manager/manager.h"\n#include <stdio.h>\n',
    "cmd.h": '#include "config/config.h"\n',
    "cmd_serve.c": '#include "cmd.h"\n#include "control.h"\n#include "http/server.h"\n',
    "control.h": '#include "util/buf.h"\n',
    "util/buf.h": "/* the floor */\n",
    "util/buf.c": '#include "util/buf.h"\n#include "buf.h"\n',
    "http/server.h": '#include "util/buf.h"\n',
    "config/config.h": '#include "util/buf.h"\n#include "http/server.h"\n',
    "config/config_internal.h": '#include "config/config.h"\n',
    "config/config.c": '#include "config/config_internal.h"\n#include "config_internal.h"\n',
    "store/store.h": '#include "config/config.h"\n',
    "github/github.h": '#include "config/config.h"\n',
    "provider/provider.h": '#include "config/config.h"\n',
    "provider/provider.c": '#include "provider/lxd.h"\n#include "provider/lxd/lxd_api.h"\n'
                           'static const char *n[] = {"local", "lxd"};\n',
    "provider/lxd.h": '#include "provider/provider.h"\n',
    "provider/lxd/lxd_api.h": '#include "provider/provider.h"\n',
    "metrics/metrics.h": '#include "provider/provider.h"\n',
    "manager/manager.h": '#include "provider/provider.h"\n#include "store/store.h"\n#include "github/github.h"\n'
                         '#include "metrics/metrics.h"\n#include "generated/version.h"\n',
    "manager/manager.c": '#include "manager/manager.h"\n'
                         '/* never compare a flavor\'s provider with "local" here */\n'
                         '// nor "lxd"\n'
                         'static const char *s = "local:" "lxdx";\n'
                         "static const char q = '\"';\n"
                         'static const char *t = "\\"lxd\\" is a backend";\n',
    "reactive/webhook.c": '#include "manager/manager.h"\n',
    "meson.build": "# not C\n",
}

BAD = [
    # (name, files changed in the good tree, expected findings (rule, file, line))
    ("lower layer includes upper", {"store/store.c": '#include "store/store.h"\n#include "manager/manager.h"\n'},
     {("layers", "src/store/store.c", 2)}),
    ("util includes config", {"util/log.c": '\n\n#include "config/config.h"\n'},
     {("layers", "src/util/log.c", 3)}),
    ("provider includes the manager", {"provider/lxd/lxd.c": '#include "manager/manager.h"\n'},
     {("layers", "src/provider/lxd/lxd.c", 1)}),
    ("same layer, other module", {"store/store.c": '#include "github/github.h"\n'},
     {("layers", "src/store/store.c", 1)}),
    ("a module below includes main's header", {"manager/manager.c": '#include "cmd.h"\n'},
     {("layers", "src/manager/manager.c", 1)}),
    ("the pure webhook module includes the manager", {"webhook/webhook_parse.c": '#include "manager/manager.h"\n'},
     {("layers", "src/webhook/webhook_parse.c", 1)}),
    ("the queue includes reactive mode", {"queue/queue.c": '#include "reactive/reactive.h"\n'},
     {("layers", "src/queue/queue.c", 1)}),
    ("unknown folder", {"ingest/ingest.c": '#include "util/buf.h"\n'},
     {("placed", "src/ingest/", 0)}),
    ("unknown top-level file", {"helpers.c": '#include "util/buf.h"\n'},
     {("placed", "src/helpers.c", 0)}),
    ("manager includes a backend header", {"manager/executor.c": '#include "manager/manager.h"\n'
                                                                 '#include "provider/lxd.h"\n'},
     {("backend-header", "src/manager/executor.c", 2)}),
    ("manager includes a backend folder's header", {"manager/planner.h": '#include "provider/lxd/lxd_api.h"\n'},
     {("backend-header", "src/manager/planner.h", 1)}),
    ("manager names a backend", {"manager/manager.c": '#include "manager/manager.h"\n'
                                                      'int f(const char *p) { return strcmp(p, "lxd") == 0 ||\n'
                                                      '  strcmp(p, "memory") == 0; }\n'},
     {("backend-name", "src/manager/manager.c", 2), ("backend-name", "src/manager/manager.c", 3)}),
    ("manager names a backend after a quote character",
     {"manager/manager.c": "int g(char c, const char *p) { return c == '\"' && !strcmp(p, \"local\"); }\n"},
     {("backend-name", "src/manager/manager.c", 1)}),
    ("internal header from outside its folder", {"cmd_check_config.c": '#include "config/config_internal.h"\n'},
     {("internal", "src/cmd_check_config.c", 1)}),
    ("internal header from a subfolder", {"provider/lxd/lxd.c": '#include "provider/provider_internal.h"\n',
                                          "provider/provider_internal.h": "\n"},
     {("internal", "src/provider/lxd/lxd.c", 1)}),
]


def write_tree(root, files):
    src = os.path.join(root, "src")
    for rel, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
        with open(os.path.join(src, rel), "w") as f:
            f.write(text)
    return src


def self_test():
    def tree_case(name, changes, want):
        def fn():
            with tempfile.TemporaryDirectory(prefix="check-layers.") as d:
                got = {(r, f, n) for r, f, n, _ in check(write_tree(d, dict(GOOD, **changes)))}
            assert got == want, "%s: found %s, want %s" % (name, sorted(got), sorted(want))
        fn.__name__ = name
        return fn
    cases = [tree_case("a well layered tree passes", {}, set())]
    cases += [tree_case(name, changes, want) for name, changes, want in BAD]
    return summary(*run_tests(cases, only=[]))


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) > 2 or (argv[1:] and argv[1].startswith("-")):
        print("usage: check-layers.py [SRC_DIR] | --self-test", file=sys.stderr)
        return 2
    src = argv[1] if argv[1:] else os.path.join(TOP, "src")
    return summary(*report(check(src)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
