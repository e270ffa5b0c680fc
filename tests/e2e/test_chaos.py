#!/usr/bin/env python3
"""Chaos (issue 8): the real `runnerd serve`, ghsim and the local provider
with two flavors and a steady stream of jobs, while runnerd is killed with
SIGKILL again and again, the kills aimed from the store and the daemon's log
at its creates, its deletes, its jobs' runs and its idle moments, and about
half of them with a GitHub fault armed for the daemon that comes back (5xx,
a delay past request_timeout, a dropped connection, a cut answer, a page
with fewer runners than its total_count, 429/403 with Retry-After, the rate
limit at zero). Then the stream stops, one last daemon finishes the jobs and
drains, and at the end: every job completed exactly once (ghsim says so)
on a runner of its flavor (GitHub's labels say so, and the runner_start
events of its workflow, one per job, name that flavor), no job was killed, and nothing is left on ghsim, on the provider, in
the store, as a process or as a temporary file; the store passes PRAGMA
integrity_check.

    RUNNERD_CHAOS_SEED      the choices' seed (printed; set it to replay them)
    RUNNERD_CHAOS_KILLS     kills of the daemon (default 50; soak 300)
    RUNNERD_CHAOS_DURATION  seconds the kills are spread over (default 100; soak 900)

`test_chaos.py --soak` (`make soak`) is the long variant: also `runnerd
reconcile` and `runnerd flush` runs killed mid-way, and ghsim stopped
(SIGSTOP) past the request timeout and continued; it prints its figures.
Timing is not replayed by a seed: the choices are.
"""

import collections
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import BIN, Env, poll, run_tests, summary  # noqa: E402

FLAVORS = [{"name": "small", "labels": ["small"], "min_idle": 1, "max": 3},
           {"name": "large", "labels": ["large"], "min_idle": 1, "max": 2}]
REQUEST_TIMEOUT = 2  # seconds: the delays and ghsim's stops go past it
HEARTBEAT = 10  # ghsim's heartbeat timeout: no job is lost to a slow machine
FOREIGN = 120  # other runners of the repository: ours are listed on page 2
PHASES = ("create", "delete", "job", "idle")
PASS_RE = re.compile(r"flavor small: desired ")


def fault_specs(rng):
    """The faults, by name: what to arm on ghsim (None: the rate limit at zero)."""
    late = REQUEST_TIMEOUT + 1
    return {
        "5xx": {"match": "/actions/runners", "method": "GET", "status": rng.choice([500, 502, 503]),
                "count": rng.randint(1, 3)},
        "5xx on delete": {"match": "/actions/runners/", "method": "DELETE", "status": 502, "count": 1},
        "delay list": {"match": "/actions/runners?", "method": "GET", "delay": late, "count": 1},
        "delay jit": {"match": "/generate-jitconfig", "method": "POST", "delay": late, "count": 1},
        "delay delete": {"match": "/actions/runners/", "method": "DELETE", "delay": late, "count": 1},
        "drop": {"match": "/actions/runners", "method": rng.choice(["GET", "POST"]), "drop": True,
                 "count": rng.randint(1, 2)},
        "truncated page": {"match": "/actions/runners?", "method": "GET", "truncate": rng.randint(0, 300)},
        "page cut mid-answer": {"match": "/actions/runners?", "method": "GET", "drop_after": rng.randint(0, 300)},
        "short page": {"match": "/actions/runners?", "method": "GET", "omit_runners": rng.randint(1, 3),
                       "count": rng.randint(1, 2)},
        "429 retry-after": {"match": rng.choice(["/actions/runners?", "/generate-jitconfig", "/actions/runners/"]),
                            "status": 429, "retry_after": rng.randint(1, 3), "count": 1},
        "403 retry-after": {"match": rng.choice(["/actions/runners?", "/generate-jitconfig"]),
                            "status": 403, "retry_after": rng.randint(1, 3), "count": 1},
        "rate limit 0": None,
    }


class JobStream(threading.Thread):
    """Queues a job every 0.5-2.5 s, of either flavor, 0.5-3 s long, until
    stopped; `jobs` holds (id, run_id, flavor) of each."""

    def __init__(self, env, rng):
        super().__init__(daemon=True)
        self.env, self.rng = env, rng
        self.stopped = threading.Event()
        self.jobs = []

    def run(self):
        while not self.stopped.wait(self.rng.uniform(0.5, 2.5)):
            f = self.rng.choice(FLAVORS)
            try:
                j = self.env.queue_job(["self-hosted", f["labels"][0]], duration=self.rng.choice([0.5, 1, 2, 3]),
                                       workflow="chaos-%d" % len(self.jobs))
            except OSError:
                continue  # ghsim stopped (SIGSTOP) past the call's timeout: the next one
            self.jobs.append((j["id"], j["run_id"], f["name"]))

    def stop(self):
        self.stopped.set()
        self.join()


class Chaos:
    """One scenario: the env, the seeded choices and the figures."""

    def __init__(self, name, seed, kills, duration, soak):
        self.seed, self.n_kills, self.duration, self.soak = seed, kills, duration, soak
        self.rng = random.Random(seed)
        self.env = Env(name, FLAVORS, heartbeat=HEARTBEAT, reconcile_interval="1s", bootstrap_timeout="30s",
                       create_concurrency=4, github_opts={"request_timeout": "%ds" % REQUEST_TIMEOUT,
                                                          "connect_timeout": "1s"})
        self.kills = collections.Counter()  # by phase the kill landed in (a kill may land in several)
        self.aimed = collections.Counter()  # by phase aimed at
        self.missed = 0  # kills whose aim was not met in time (killed anyway)
        self.faults = collections.Counter()
        self.cli_kills = collections.Counter()  # reconcile / flush runs killed while they ran
        self.cli_done = 0  # CLI runs that ended before their kill
        self.ghsim_stops = 0
        self.jobs_ok = 0  # jobs the end found completed once, on their flavor, not killed
        self.drained = False  # the last daemon drained and stopped
        self.died = []  # daemons that ended by themselves: what they said
        self.up_at = 0  # where the log of the running daemon begins
        self.started = time.time()
        self.stream = JobStream(self.env, random.Random(seed + 1))

    # --- what runnerd is doing ------------------------------------------
    def phases(self):
        """Store rows by phase, {} while the store cannot be read."""
        try:
            rows = self.env.store_rows()
        except sqlite3.Error:
            return collections.Counter()
        return collections.Counter(r["phase"] for r in rows.values())

    def pass_ended(self, since):
        """Whether a pass ended since log offset `since` and was the last thing logged."""
        tail = self.env.log(since).rstrip("\n").splitlines()
        return bool(tail) and "flavor large: desired " in tail[-1]

    def jobs_running(self):
        try:
            return any(j["status"] == "in_progress" for j in self.env.jobs())
        except OSError:
            return False

    def landed(self, running):
        """The phases a kill at this moment lands in: create and delete as
        the store says, job as ghsim says, idle when the daemon's last word
        was the end of a pass and nothing is being created or deleted."""
        ph, out = self.phases(), []
        if ph["creating"]:
            out.append("create")
        if ph["deleting"]:
            out.append("delete")
        if running:
            out.append("job")
        if not ph["creating"] and not ph["deleting"] and self.pass_ended(self.up_at):
            out.append("idle")
        return out

    def aim(self, target, timeout):
        """Wait until runnerd is in the target phase (create: a row being
        created; delete: a row being deleted; job: a job running; idle: a
        pass just ended and nothing is being created or deleted), at most
        timeout seconds. Returns whether it was."""
        mark = self.env.log_size()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.env.daemon.poll() is not None:
                return False
            ph = self.phases()
            if target == "create" and ph["creating"]:
                return True
            if target == "delete" and ph["deleting"]:
                return True
            if target == "job" and self.jobs_running():
                return True
            if target == "idle" and not ph["creating"] and not ph["deleting"] and self.pass_ended(mark):
                return True
            time.sleep(0.01)
        return False

    # --- acts ------------------------------------------------------------
    def start_daemon(self):
        self.up_at = self.env.log_size()
        self.env.serve(wait=False)

    def kill_daemon(self):
        """SIGKILL to the daemon; returns the phases it landed in (none
        when it had ended by itself: that is kept in self.died)."""
        d = self.env.daemon
        landed = self.landed(self.jobs_running())
        if d.poll() is not None:
            self.died.append("exit status %s: %s" % (d.returncode, self.env.log(self.up_at)[-2000:]))
            landed = []
        else:
            os.kill(d.pid, signal.SIGKILL)
        d.wait()
        self.env.daemon = None
        return landed

    def arm_fault(self):
        self.env.gh("DELETE", "/_ghsim/faults")
        specs = fault_specs(self.rng)
        name = self.rng.choice(sorted(specs))
        if specs[name] is None:
            self.env.gh("POST", "/_ghsim/ratelimit", {"remaining": 0, "reset_in": self.rng.uniform(1, 4)})
        else:
            self.env.gh("POST", "/_ghsim/faults", specs[name])
        self.faults[name] += 1

    def cli_run(self, daemon_up):
        """A `runnerd reconcile` or `runnerd flush` killed mid-way: through
        the daemon when it runs, else doing the pass itself under the
        state-dir lock (then the kill is aimed like the daemon's)."""
        cmd = self.rng.choice(["reconcile", "flush"])
        with open(self.env.log_path, "a") as out:
            out.write("$ runnerd %s (to be killed)\n" % cmd)
            out.flush()
            p = subprocess.Popen([BIN, cmd, "-c", self.env.config], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT)
        if daemon_up:
            time.sleep(self.rng.uniform(0.01, 0.5))
        else:
            # its pass takes a few hundred ms: killed in it, at a create or a delete when one comes
            target = self.rng.choice(["creating", "deleting"])
            deadline = time.time() + self.rng.uniform(0.02, 0.4)
            while time.time() < deadline and p.poll() is None and not self.phases()[target]:
                time.sleep(0.005)
        if p.poll() is None:
            p.kill()
            self.cli_kills[cmd] += 1
        else:
            self.cli_done += 1
        p.wait()
        if daemon_up:
            assert self.env.daemon.poll() is None, "the daemon died when a client of it was killed"

    def stop_ghsim(self, kill_meanwhile):
        """SIGSTOP ghsim past the request timeout (runnerd's calls time out,
        runners wait), then SIGCONT; kill_meanwhile: the daemon dies in it."""
        pid = self.env.ghsim.pid
        os.kill(pid, signal.SIGSTOP)
        self.ghsim_stops += 1
        try:
            time.sleep(self.rng.uniform(REQUEST_TIMEOUT + 0.5, REQUEST_TIMEOUT + 2.5))
            if kill_meanwhile:
                # the store and the log alone say where it is: ghsim cannot answer now
                self.kills["ghsim stopped"] += 1
                for p in self.landed(False):
                    self.kills[p] += 1
                d = self.env.daemon
                os.kill(d.pid, signal.SIGKILL)
                d.wait()
                self.env.daemon = None
        finally:
            os.kill(pid, signal.SIGCONT)

    # --- the scenario ------------------------------------------------------
    def setup(self):
        env = self.env
        env.gh("POST", "/_ghsim/runners", {"scope": "repos/octo/hello", "name": "other-{i}", "labels": ["other"],
                                           "status": "online", "count": FOREIGN})
        self.start_daemon()
        env.wait(env.control_answers, 30, "the daemon up")
        env.wait(lambda: env.idle_count() == 2, 90, "both pools at min_idle")
        self.stream.start()

    def one_round(self, i, pace):
        env = self.env
        # up for a while: passes run, runners take jobs
        time.sleep(self.rng.uniform(0, pace))
        if self.soak and self.rng.random() < 0.1:
            self.stop_ghsim(kill_meanwhile=self.rng.random() < 0.5)
        if self.soak and env.daemon is not None and self.rng.random() < 0.05:
            self.cli_run(daemon_up=True)
        if env.daemon is not None:
            target = PHASES[i % len(PHASES)] if i < 2 * len(PHASES) else self.rng.choice(PHASES)
            self.aimed[target] += 1
            if not self.aim(target, 2 * pace + 2):
                self.missed += 1
            time.sleep(self.rng.choice([0, 0, 0.002, 0.01, 0.03]))  # at different points of what it does
            for p in self.kill_daemon():
                self.kills[p] += 1
        # down for a while: runners finish jobs that nobody cleans up yet
        time.sleep(self.rng.uniform(0, 0.8))
        if self.soak and self.rng.random() < 0.2:
            self.cli_run(daemon_up=False)
        if self.rng.random() < 0.5:
            self.arm_fault()
        self.start_daemon()

    def finish(self):
        """The stream stops, faults go, one daemon finishes every job and drains."""
        env = self.env
        self.stream.stop()
        env.gh("DELETE", "/_ghsim/faults")
        env.gh("POST", "/_ghsim/ratelimit", {"remaining": 5000, "limit": 5000})
        if env.daemon.poll() is not None:
            self.kill_daemon()
            self.start_daemon()
        env.wait(env.control_answers, 30, "the last daemon up")
        ids = {jid for jid, _, _ in self.stream.jobs}
        env.wait(lambda: all(j["status"] == "completed" for j in env.jobs() if j["id"] in ids),
                 120 + 3 * len(ids), "every job completed")
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        assert env.stop() == 0, "the last daemon did not stop cleanly"
        self.drained = True

    def check(self):
        env = self.env
        by_id = {j["id"]: j for j in env.jobs()}
        flavor_label = {f["name"]: f["labels"][0] for f in FLAVORS}
        starts = self.runner_starts()
        for i, (jid, run_id, flavor) in enumerate(self.stream.jobs):
            j = by_id[jid]
            assert j["status"] == "completed" and j["conclusion"] == "success" and not j["killed"], j
            assert re.fullmatch(r"e2e-[0-9a-f]{12}", j["runner_name"] or ""), j
            labels = {x.lower() for x in j["runner_labels"] or []}
            other = {flavor_label[f] for f in flavor_label if f != flavor}
            assert flavor_label[flavor] in labels and not labels & other, (flavor, j)
            # its runner's metrics became events of its flavor: at least once (a kill
            # between an event and its storage's removal issues them again), never of
            # another flavor
            got = starts.get("chaos-%d" % i, [])
            assert got and set(got) == {flavor}, \
                "job %d (run %d, %s) has runner_start events of flavors %s" % (jid, run_id, flavor, got)
            self.jobs_ok += 1
        assert env.daemon is None
        env.assert_nothing_left()

    def runner_starts(self):
        """{workflow: [flavor of each runner_start event of it]} from the events log."""
        out = collections.defaultdict(list)
        for ev in self.env.events("runner_start"):
            out[ev["workflow"]].append(ev["flavor"])
        return out

    def figures(self):
        """What the run did, printed (also when it failed: with what was left)."""
        env = self.env
        try:
            applied = env.stats()["faults_applied"]
            if self.drained:  # what the instances started may take a moment to end
                poll(lambda: not env.runner_user_processes(), 15, 0.3)
            left = {k: v for k, v in env.leftovers().items() if v}
            leaks = "%d%s" % (sum(len(v) for v in left.values()), " %s" % left if left else "")
        except OSError:
            applied = leaks = "?"

        def counts(c):
            return ", ".join("%s %d" % kv for kv in sorted(c.items())) or "none"
        lines = [
            ("duration", "%.0f s" % (time.time() - self.started)),
            ("kills", "%d of runnerd serve; landed in: %s; aimed at: %s (%d not met in time)" % (
                sum(self.aimed.values()) + self.kills["ghsim stopped"], counts(self.kills), counts(self.aimed),
                self.missed)),
            ("jobs", "%d queued, %d found run exactly once on their flavor" % (len(self.stream.jobs), self.jobs_ok)),
            ("passes", "%d (the daemons')" % len(PASS_RE.findall(env.log()))),
            ("faults", "%d armed (%s), %s fired" % (sum(self.faults.values()), counts(self.faults), applied)),
        ]
        if self.soak:
            lines += [("CLI kills", "%d runs killed mid-way (%s), %d ended first" % (
                          sum(self.cli_kills.values()), counts(self.cli_kills), self.cli_done)),
                      ("ghsim stops", "%d (SIGSTOP past request_timeout, then SIGCONT)" % self.ghsim_stops)]
        lines.append(("leaks", leaks))
        print("chaos figures, seed %d:" % self.seed, flush=True)
        for k, v in lines:
            print("  %-12s %s" % (k, v), flush=True)

    def run(self):
        print("chaos: seed %d (RUNNERD_CHAOS_SEED=%d replays the choices), %d kills over %gs%s" % (
            self.seed, self.seed, self.n_kills, self.duration, ", soak" if self.soak else ""), flush=True)
        ok = False
        try:
            self.setup()
            pace = self.duration / self.n_kills
            for i in range(self.n_kills):
                self.one_round(i, pace)
            self.finish()
            assert not self.died, "runnerd ended by itself %d times:\n%s" % (len(self.died), "\n".join(self.died))
            self.check()
            ok = True
        finally:
            self.stream.stopped.set()
            self.figures()
            self.env.close(keep=not ok)
        # every phase was hit (and in a soak, CLI runs and ghsim's stops),
        # or the scenario did not test what it says
        short = [p for p in PHASES if self.kills[p] < max(1, self.n_kills // 20)]
        assert not short, "too few kills landed in %s: %s" % (short, dict(self.kills))
        if self.soak:
            assert sum(self.cli_kills.values()) >= max(1, self.n_kills // 40), \
                "too few reconcile/flush runs killed: %s" % dict(self.cli_kills)
            assert self.ghsim_stops >= max(1, self.n_kills // 40), "ghsim stopped %d times" % self.ghsim_stops


def setting(name, default):
    v = os.environ.get(name)
    return type(default)(v) if v else default


def chaos(soak):
    seed = setting("RUNNERD_CHAOS_SEED", random.SystemRandom().randrange(1 << 31))
    kills = setting("RUNNERD_CHAOS_KILLS", 300 if soak else 50)
    duration = setting("RUNNERD_CHAOS_DURATION", 900.0 if soak else 100.0)
    Chaos("soak" if soak else "chaos", seed, kills, duration, soak).run()


def test_chaos():
    chaos(soak=False)


def test_chaos_soak():
    chaos(soak=True)


if __name__ == "__main__":
    soak = sys.argv[1:] == ["--soak"]
    sys.exit(summary(*run_tests([test_chaos_soak] if soak else [test_chaos], only=[])))
