#!/usr/bin/env python3
"""The main job on the embedded defaults (SQLite state, local provider):
ghsim stands in for GitHub; runnerd serve keeps two flavors' pools; about 10
jobs with mixed labels are queued; runners take them, finish and are
replaced; then drain --wait. Exits 0 only if every job completed on a runner
of the right flavor (by the labels GitHub -- ghsim -- recorded for the runner
that ran it), none was killed, nothing leaked (no runner on GitHub; no
instance, provider record or runner-user process left) and it all took under
2 minutes (from $RUNNERD_DEMO_T0, set by demo.sh before the build)."""

import os
import sys
import time

T0 = float(os.environ.get("RUNNERD_DEMO_T0") or time.time())
LIMIT = 120  # seconds

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
from harness import Env, poll  # noqa: E402

FLAVORS = [
    {"name": "small", "labels": ["small"], "min_idle": 2, "max": 4},
    {"name": "large", "labels": ["large", "gpu-less"], "min_idle": 1, "max": 2},
]
JOBS = [(["self-hosted", "small"], 3), (["large"], 4), (["small"], 2), (["self-hosted", "linux", "x64", "small"], 3),
        (["large", "gpu-less"], 2), (["small"], 4), (["small"], 1), (["large"], 3), (["small"], 2), (["small"], 3)]


def line(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def progress(env):
    jobs = env.jobs()
    by = {}
    for j in jobs:
        by[j["status"]] = by.get(j["status"], 0) + 1
    fl = env.flavor_counts()
    line("jobs %s | %s" % (" ".join("%s=%d" % kv for kv in sorted(by.items())),
                           " | ".join("%s: idle %d busy %d pending %d desired %d" %
                                      (n, c["idle"], c["busy"], c["pending"], c["desired"]) for n, c in fl.items())))
    return jobs


def want_flavor(labels):
    """The flavor a job goes to: the first, in config order, whose labels hold
    every label of the job but the implied ones."""
    implied = {"self-hosted", "linux", "x64"}
    rest = {x.lower() for x in labels} - implied
    for f in FLAVORS:
        if rest <= {x.lower() for x in f["labels"]}:
            return f["name"]
    return None


def ran_on_flavor(runner_labels):
    """The flavor of a runner by the labels it was registered with: the one
    flavor whose labels it carries (None when none or several match)."""
    have = {x.lower() for x in runner_labels or []}
    match = [f["name"] for f in FLAVORS if {x.lower() for x in f["labels"]} <= have]
    return match[0] if len(match) == 1 else None


def main():
    env = Env("demo", FLAVORS, manager="demo", reconcile_interval="2s", bootstrap_timeout="1m")
    ok = False
    try:
        line("ghsim (the GitHub simulator) at %s; state in %s" % (env.url, env.tmp))
        env.serve()
        line("runnerd serve started (pid %d), local provider, flavors small (2..4) and large (1..2)" % env.daemon.pid)
        env.wait(lambda: env.idle_count() == 3, 90, "the pools to reach min_idle")
        line("pools at min_idle: %s" % ", ".join(sorted(r["name"] for r in env.gh_runners())))
        ids = {}
        for labels, dur in JOBS:
            j = env.queue_job(labels, duration=dur)
            ids[j["id"]] = labels
        line("queued %d jobs with mixed labels" % len(ids))
        deadline = time.time() + 100
        while time.time() < deadline:
            jobs = [j for j in progress(env) if j["id"] in ids]
            if all(j["status"] == "completed" for j in jobs):
                break
            time.sleep(3)
        jobs = [j for j in env.jobs() if j["id"] in ids]
        print()
        print(env.run("status").stdout)
        bad = []
        for j in jobs:
            want = want_flavor(ids[j["id"]])
            got = ran_on_flavor(j.get("runner_labels"))
            if j["status"] != "completed" or j.get("killed") or j.get("conclusion") != "success" or got != want:
                bad.append((j["id"], j["status"], j.get("runner_name"), got, want))
            line("job %d %-9s labels=%s on %s, registered with %s (flavor %s)" %
                 (j["id"], j["status"], ",".join(ids[j["id"]]), j.get("runner_name"),
                  ",".join(j.get("runner_labels") or []), got))
        line("drain --wait: pools go to zero, then nothing is left")
        env.run("drain", "--wait", "--timeout", "60s", timeout=120)
        env.stop()
        leaked_gh, leaked_inst, leaked_rec = env.gh_runners(), env.instances(), env.state_files()
        poll(lambda: not env.runner_user_processes(), 10, 0.3)
        leaked_proc = env.runner_user_processes()
        killed = env.stats()["killed_jobs"]
        line("left on GitHub: %d runners; left on the provider: %d instances, %d records, %d processes; "
             "jobs killed: %d" % (len(leaked_gh), len(leaked_inst), len(leaked_rec), len(leaked_proc), killed))
        for what in (leaked_gh, leaked_inst, leaked_rec, leaked_proc):
            if what:
                line("leaked: %s" % (what,))
        total = time.time() - T0
        line("total time: %.1f s (limit %d s)" % (total, LIMIT))
        ok = (not bad and not leaked_gh and not leaked_inst and not leaked_rec and not leaked_proc and
              killed == 0 and len(jobs) == len(ids) and total <= LIMIT)
        if bad:
            line("jobs not done right (id, status, runner, flavor ran on, flavor wanted): %s" % bad)
        if total > LIMIT:
            line("too slow: over %d s" % LIMIT)
        line("demo %s" % ("PASSED: every job ran on a runner of its flavor, nothing leaked" if ok else "FAILED"))
    finally:
        if not ok:
            print("--- runnerd log (tail) ---")
            print("\n".join(env.log().splitlines()[-40:]))
        env.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
