#!/usr/bin/env python3
"""The Grafana dashboard (contrib/grafana/runnerd.json) against the metrics
runnerd exports, checked by `make check`.

Reads the dashboard as JSON and the sources that make runnerd's Prometheus
families (every string literal "runnerd_..." in src/metrics/,
src/daemon/ and src/reactive/: a family's name); it builds and runs nothing. Each rule is
one test:

  json      the file is JSON, with a title, a uid and panels;
  exprs     every panel has at least one target, and every target an expr
            that names a metric of runnerd's;
  metrics   every runnerd_* name in an expr is a family runnerd exports (a
            histogram's with _bucket, _sum or _count), so a renamed metric
            cannot leave a panel silently empty;
  ids       panel ids are unique.

    check-dashboard.py [DASHBOARD]     (default: contrib/grafana/runnerd.json)
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import TOP  # noqa: E402

SOURCES = [os.path.join(TOP, "src", d) for d in ("metrics", "daemon", "reactive")]
NAME = re.compile(r"\brunnerd_[a-zA-Z0-9_:]*")


def exported():
    """(families, histograms) named in the sources."""
    names, hist = set(), set()
    for d in SOURCES:
        for f in sorted(os.listdir(d)):
            if not f.endswith(".c"):
                continue
            text = open(os.path.join(d, f)).read()
            for m in re.finditer(r'"(runnerd_[a-zA-Z0-9_:]+)"', text):
                names.add(m.group(1))
            # a histogram family: PROM_HISTOGRAM near its name
            for m in re.finditer(r'PROM_HISTOGRAM,\s*"(runnerd_[a-zA-Z0-9_:]+)"', text):
                hist.add(m.group(1))
    return names, hist


def panels(d):
    for p in d.get("panels", []):
        yield p
        for q in p.get("panels", []):
            yield q


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "contrib", "grafana", "runnerd.json")
    failed = []

    def result(rule, problems):
        if problems:
            failed.append(rule)
            print("not ok - %s" % rule)
            for p in problems:
                print("    %s" % p)
        else:
            print("ok - %s" % rule)

    try:
        with open(path) as f:
            dash = json.load(f)
        bad = [k for k in ("title", "uid", "panels") if not dash.get(k)]
        result("json", ["missing %s" % k for k in bad])
    except (OSError, ValueError) as e:
        result("json", [str(e)])
        for rule in ("exprs", "metrics", "ids"):
            result(rule, ["the dashboard could not be read"])
        return summary(failed)

    names, hist = exported()
    known = set(names)
    for h in hist:
        known |= {h + "_bucket", h + "_sum", h + "_count"}
    no_expr, unknown, ids = [], [], {}
    for p in panels(dash):
        ids.setdefault(p.get("id"), []).append(p.get("title"))
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            no_expr.append("%s: no target" % p.get("title"))
        for t in targets:
            expr = t.get("expr", "")
            used = NAME.findall(expr)
            if not used:
                no_expr.append("%s: %r names no runnerd metric" % (p.get("title"), expr))
            for n in used:
                if n not in known:
                    unknown.append("%s: %s is not a metric runnerd exports" % (p.get("title"), n))
    result("exprs", no_expr)
    result("metrics", unknown + ([] if names else ["no runnerd_ family found in the sources"]))
    result("ids", ["id %s: %s" % (i, t) for i, t in ids.items() if len(t) > 1])
    return summary(failed)


def summary(failed):
    total = 4
    print("%d passed, %d failed" % (total - len(failed), len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
