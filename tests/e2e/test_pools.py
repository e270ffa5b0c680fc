#!/usr/bin/env python3
"""End-to-end scenarios of issue 3: the real runnerd, ghsim, the local
provider. Short timeouts (seconds) so the whole file runs in a few minutes."""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import TOKEN, Env, Proc, main, processes, signal_pids  # noqa: E402

SMALL = {"name": "small", "labels": ["small"], "min_idle": 2, "max": 4}
NAME_RE = r"e2e-[0-9a-f]{12}"


def names(runners):
    return {r["name"] for r in runners}


def job(env, jid):
    return env.gh("GET", "/_ghsim/jobs/%d" % jid)


def completed(env, jid):
    j = job(env, jid)
    return j if j["status"] == "completed" else None


def no_leak(env, killed=0):
    """After drain: nothing left (Env.assert_nothing_left)."""
    env.run("drain", "--wait", "--timeout", "90s", timeout=150)
    env.assert_nothing_left(killed)


def delete_lines(text, protected):
    """Log lines that delete one of the protected names."""
    return [ln for ln in text.splitlines() if re.search(r" (delete|delete-runner) (%s)\b" %
                                                        "|".join(map(re.escape, protected)), ln)]


def instance_pids(env, name):
    """Processes of one instance: cwd or RUNNERD_HOME in its directory."""
    home = os.path.join(env.work, name)
    return [p.pid for p in processes() if p.cwd.startswith(home) or "RUNNERD_HOME=" + home in p.environ]


def instance_secrets(env, key):
    """The values of one secret variable in the instances' environments (as
    each process received it at exec)."""
    out = set()
    for name in env.instances():
        for pid in instance_pids(env, name):
            for kv in Proc(pid).environ:
                if kv.startswith(key + "=") and len(kv) > len(key) + 10:
                    out.add(kv.split("=", 1)[1])
    return out


def all_cmdlines():
    return "\n".join(p.cmdline for p in processes())


def test_pool_reaches_min_idle_and_stays():
    env = Env("minidle", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle runners")
        before = names(env.gh_runners())
        creates = env.log().count(" create ")
        time.sleep(6)  # a few passes
        assert names(env.gh_runners()) == before
        assert env.log().count(" create ") == creates, "a steady pool created more"
        c = env.flavor_counts()["small"]
        assert c["idle"] == 2 and c["desired"] == 2, c
        assert len(env.instances()) == 2
        no_leak(env)
    finally:
        env.close()


def test_job_runs_and_runner_is_replaced():
    env = Env("replace", [SMALL, {"name": "large", "labels": ["large"], "min_idle": 1, "max": 2}])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 3, 60, "3 idle runners")
        before = names(env.gh_runners())
        jid = env.queue_job(["self-hosted", "large"], duration=2)["id"]
        j = env.wait(lambda: completed(env, jid), 60, "job completed")
        assert j["runner_name"] in before and not j["killed"] and j["conclusion"] == "success", j
        # the runner that ran it, as GitHub registered it, carried the large flavor's labels
        labels = {x.lower() for x in j["runner_labels"] or []}
        assert "large" in labels and "small" not in labels, j["runner_labels"]
        # replaced: 3 idle again, the used runner gone from GitHub and the provider
        env.wait(lambda: env.idle_count() == 3 and j["runner_name"] not in names(env.gh_runners()),
                 60, "replacement")
        env.wait(lambda: j["runner_name"] not in env.instances(), 30, "instance removed")
        # its metrics were pulled before the instance went, became its events (the large
        # flavor's runner_start and runner_stop) and their folder went
        stops = env.wait(lambda: [ev for ev in env.events("runner_stop") if ev["flavor"] == "large"],
                         30, "the large runner's runner_stop")
        assert stops[0]["status"] == "normal" and stops[0]["job_conclusion"] == "success", stops
        assert [ev for ev in env.events("runner_start") if ev["flavor"] == "large"], env.events()
        mdir = os.path.join(env.state, "metrics", j["runner_name"])
        env.wait(lambda: not os.path.exists(mdir), 10, "its metrics folder processed and removed")
        disk = env.status()["disk"]
        assert disk["measured"], disk
        no_leak(env)
    finally:
        env.close()


def test_max_never_exceeded_under_burst():
    env = Env("burst", [{"name": "small", "labels": ["small"], "min_idle": 1, "max": 3}])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 1, 60, "1 idle")
        ids = [env.queue_job(["small"], duration=1)["id"] for _ in range(8)]
        peak_gh = peak_inst = 0
        deadline = time.time() + 150
        while time.time() < deadline:
            peak_gh = max(peak_gh, len(env.gh_runners()))
            peak_inst = max(peak_inst, len(env.instances()))
            done = [j for j in env.jobs() if j["id"] in ids and j["status"] == "completed"]
            if len(done) == len(ids):
                break
            time.sleep(0.2)
        assert len(done) == len(ids), "only %d of %d jobs completed" % (len(done), len(ids))
        assert peak_gh <= 3 and peak_inst <= 3, (peak_gh, peak_inst)
        no_leak(env)
    finally:
        env.close()


def jit_requests(env):
    """generate-jitconfig requests ghsim received, and those it answered."""
    received = sum(v for k, v in env.stats()["by_route"].items() if "generate-jitconfig" in k)
    with open(env.ghsim_log, errors="replace") as f:
        answered = sum(1 for ln in f if "/generate-jitconfig -> " in ln)
    return received, answered


def test_kill9_during_creates_then_restart():
    # the default-ish bootstrap timeout: a leftover of the killed creates
    # that held a slot, or an instance nobody accounts for, would still be
    # there after the pass
    env = Env("kill9", [{"name": "small", "labels": ["small"], "min_idle": 8, "max": 8}],
              create_concurrency=2, bootstrap_timeout="20m")
    try:
        # the first 3 JIT configs come at once; ghsim holds the next 2 for 6 s
        # (GitHub registers the runners, but only after runnerd is dead)
        env.gh("POST", "/_ghsim/faults", {"match": "/generate-jitconfig", "method": "POST", "skip": 3,
                                          "count": 2, "delay": 6})
        d = env.serve()
        env.wait(lambda: env.gh("GET", "/_ghsim/faults")[0]["count"] == 0, 60, "2 creates held by ghsim")
        os.kill(d.pid, signal.SIGKILL)
        d.wait()
        env.daemon = None
        env.wait(lambda: (lambda r, a: r == a)(*jit_requests(env)), 30, "the held requests answered")
        logged = set(re.findall(r" create (%s) flavor=" % NAME_RE, env.log()))
        unheard = names(env.gh_runners()) - logged
        assert len(unheard) >= 2, "the kill did not land mid-create: %s" % unheard
        rows = env.store_rows()
        assert all(n in rows and rows[n]["phase"] == "creating" for n in unheard), (unheard, rows)
        # exactly one pass, without a daemon (reconcile takes the state dir itself)
        out = env.run("reconcile").stdout
        gh, inst, rows = names(env.gh_runners()), set(env.instances()), set(env.store_rows())
        assert gh == inst == rows, "unaccounted for after one pass: %s\n%s" % ((gh, inst, rows), out)
        assert len(inst) == 8, "pool not at target after one pass: %d\n%s" % (len(inst), out)
        assert not unheard & gh, unheard & gh
        assert set(env.state_files()) == {n + ".json" for n in inst}, env.state_files()
        # and it stays there
        env.serve()
        env.wait(lambda: env.idle_count() == 8, 90, "8 idle")
        assert set(env.instances()) == inst and names(env.gh_runners()) == inst
        no_leak(env)
    finally:
        env.close()


def test_kill9_leaves_temporaries_the_next_start_removes():
    """kill -9 between a temporary's open and its rename leaves it behind
    (regression, found by test_chaos: a record's in work_dir/.state, a
    metrics file's in state_dir/metrics/<name>/, a saved log's in
    log_dir/<name>/, in the old spelling <path>.tmp.<pid>); the next
    runnerd's first pass removes them, and nothing else."""
    env = Env("temps", [SMALL])
    try:
        d = env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        name = env.instances()[0]
        os.kill(d.pid, signal.SIGKILL)
        d.wait()
        env.daemon = None
        record = os.path.join(env.work, ".state", name + ".json")
        planted = [record + ".tmp.%d" % d.pid,
                   os.path.join(env.state, "metrics", name, "pre-job-metrics.json.tmp.%d" % d.pid),
                   os.path.join(env.log_dir, name, "startup.log.tmp.%d" % d.pid),
                   os.path.join(env.log_dir, name, "_diag", "Runner_20240101-000000-utc.log.tmp.%d" % d.pid)]
        for path in planted:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "w") as f:
                f.write('{"version": 1, "na')  # what the kill cut short
        kept = open(record).read()
        assert env.temp_files() == sorted(planted), env.temp_files()
        env.serve()
        # the first pass sweeps them (and the local provider's gc its .state)
        env.wait(lambda: env.temp_files() == [], 30, "the temporaries swept")
        assert open(record).read() == kept
        env.wait(lambda: env.idle_count() == 2, 30, "2 idle")
        assert name in env.instances()
        no_leak(env)
    finally:
        env.close()


def test_faults_cause_no_deletion_and_recover():
    env = Env("faults", [SMALL])
    try:
        # 150 foreign runners first: ours get ids above 100, on page 2 of the list
        env.gh("POST", "/_ghsim/runners", {"scope": "repos/octo/hello", "name": "other", "labels": ["x"],
                                           "status": "online", "busy": False, "count": 150})
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        ours = env.gh_runners()
        assert all(r["id"] > 100 for r in ours), ours
        inst = set(env.instances())
        assert inst == names(ours)
        faults = [
            ("500", {"match": "/actions/runners", "method": "GET", "status": 500, "count": -1}),
            ("page 2", {"match": "page=2", "method": "GET", "status": 502, "count": -1}),
            ("dropped", {"match": "/actions/runners", "method": "GET", "drop": True, "count": -1}),
            ("rate limit", None),
        ]
        planted = []
        for what, f in faults:
            applied = env.stats()["faults_applied"]
            if f:
                env.gh("POST", "/_ghsim/faults", f)
            else:
                env.gh("POST", "/_ghsim/ratelimit", {"remaining": 0, "reset_in": 5})
            mark = len(env.log())
            # a runner of ours with no instance: a pass on a complete list deletes it at once (dangling)
            d = env.gh("POST", "/_ghsim/runners", {"scope": "repos/octo/hello", "name": "e2e-{hex}",
                                                   "labels": ["small"], "status": "offline"})["runners"][0]
            planted.append(d["name"])
            p = env.run("reconcile", check=False)
            out = p.stdout + p.stderr
            assert env.daemon.poll() is None, "runnerd died under %s" % what
            if f:
                assert env.stats()["faults_applied"] > applied, "the %s fault did not fire" % what
            else:
                assert "rate limit" in out, out
            assert "(no deletions)" in out, "%s: the pass did not see the failure:\n%s" % (what, out)
            assert not re.search(r"^delete", out, re.M), "%s: the pass deleted:\n%s" % (what, out)
            assert d["name"] in names(env.gh_runners()), "%s: deleted on partial data" % what
            assert set(env.instances()) == inst, "%s: instance deleted on partial data" % what
            bad = delete_lines(env.log()[mark:], inst | {d["name"]})
            assert not bad, "%s: deleted under the fault: %s" % (what, bad)
            env.gh("DELETE", "/_ghsim/faults")
        # recovery: once the budget is back, a pass sees everything again and
        # removes the planted runners; the pool is untouched
        env.wait(lambda: not set(planted) & names(env.gh_runners()), 60, "the planted runners deleted")
        out = env.run("reconcile").stdout
        assert "no deletions" not in out, out
        assert set(env.instances()) == inst and names(env.gh_runners()) == inst
        # and a job runs and is replaced normally
        jid = env.queue_job(["small"], duration=1)["id"]
        env.wait(lambda: completed(env, jid), 60, "job after faults")
        env.wait(lambda: env.idle_count() == 2 and len(env.instances()) == 2, 60, "pool recovered")
        assert env.daemon.poll() is None
        no_leak(env)
    finally:
        env.close()


def test_instance_killed_behind_our_back_is_replaced():
    env = Env("killed", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        victim = env.instances()[0]
        signal_pids(instance_pids(env, victim), signal.SIGKILL)
        env.wait(lambda: victim not in env.instances() and env.idle_count() == 2
                 and victim not in names(env.gh_runners()), 60, "replacement")
        no_leak(env)
    finally:
        env.close()


def test_offline_runner_cleaned_after_timeout():
    timeout = 18
    env = Env("offline", [SMALL], bootstrap_timeout="%ds" % timeout)
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        victim = env.instances()[0]
        created = env.store_rows()[victim]["created_at"]
        # the runner hangs (its processes stop): no more heartbeats, GitHub
        # shows it offline, while the instance itself is still there
        for _ in range(3):
            signal_pids(instance_pids(env, victim), signal.SIGSTOP)
            time.sleep(0.2)
        env.wait(lambda: [r for r in env.gh_runners() if r["name"] == victim and r["status"] == "offline"],
                 30, "the runner offline on GitHub")
        assert time.time() < created + timeout - 4, "too slow to see the runner before its timeout"
        # not before the bootstrap timeout (created_at is whole seconds: 1.5 s of margin)...
        while time.time() < created + timeout - 1.5:
            assert victim in env.instances(), "instance removed before the timeout"
            assert victim in names(env.gh_runners()), "runner removed before the timeout"
            time.sleep(0.3)
        # ...and soon after it
        env.wait(lambda: victim not in names(env.gh_runners()) and victim not in env.instances(),
                 30, "offline runner cleaned")
        assert re.search(r" delete %s flavor=small reason=offline" % victim, env.log()), "not as offline"
        # an unhealthy instance's logs are saved before it goes
        diag = os.path.join(env.tmp, "logs", victim, "_diag")
        assert any(f.startswith("Runner_") for f in os.listdir(diag)), os.listdir(diag)
        assert os.path.exists(os.path.join(env.tmp, "logs", victim, "startup.log"))
        env.wait(lambda: env.idle_count() == 2, 60, "replaced")
        no_leak(env)
    finally:
        env.close()


def busy_runner(env, jid):
    j = env.wait(lambda: [j for j in env.jobs() if j["id"] == jid and j["status"] == "in_progress"],
                 60, "job running")[0]
    return j["runner_name"]


def status_table(text):
    """runnerd status text -> ({flavor: {column: int}}, [{column: str}] per runner)."""
    flavors, runners, lines = {}, [], text.splitlines()
    head = None
    for ln in lines:
        cols = ln.split()
        if not cols:
            head = None
            continue
        if cols[0] in ("FLAVOR", "RUNNER"):
            head = [c.lower() for c in cols]
            continue
        if head and head[0] == "flavor":
            assert len(cols) == len(head), ln
            flavors[cols[0]] = dict(zip(head[1:], map(int, cols[1:])))
        elif head and head[0] == "runner":
            assert len(cols) == len(head), ln
            runners.append(dict(zip(head, cols)))
    return flavors, runners


def test_busy_runner_survives_then_flush_busy_status_and_json_log():
    env = Env("busy", [SMALL])
    jlog = os.path.join(env.tmp, "daemon.jsonl")
    try:
        env.serve(global_args=["--log-format", "json"], log_path=jlog)
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        jid = env.queue_job(["small"], duration=120)["id"]
        name = busy_runner(env, jid)
        # desired = busy 1 + min_idle 2 (status reports the daemon's latest pass: wait for one
        # that saw the replacement)
        want = {"online": 3, "offline": 0, "busy": 1, "idle": 2, "unknown": 0, "desired": 3}
        env.wait(lambda: {k: env.flavor_counts()["small"][k] for k in want} == want, 60, "a replacement")
        # status, text: per flavor counts, per runner GitHub state, cloud state, health, age
        text, st = env.run("status").stdout, env.status()
        flavors, runners = status_table(text)
        # what runnerd keeps on disk and its bounds, and each provider: how it isolates and
        # what the front counted
        disk = st["disk"]
        assert disk["measured"] and disk["logs"]["max_bytes"] == 1 << 30, disk
        assert disk["metrics"]["retention_s"] == disk["logs"]["retention_s"] == 7 * 86400, disk
        [prov] = st["providers"]
        assert (prov["name"], prov["type"]) == ("local", "local"), prov
        assert re.match(r"(namespace|fallback) mode", prov["note"]), prov
        assert prov["traits"]["list_files"] and prov["traits"]["runner_from_host"], prov
        assert prov["stats"]["create"]["calls"] >= 3 and prov["stats"]["list"]["calls"] >= 1, prov
        assert prov["stats"]["list"]["refused"] == 0, prov
        assert re.search(r"^disk: metrics \d+ folders, .* saved logs \d+ folders, .* of 1\.0 GiB "
                         r"\(kept 7d\)$", text, re.M), text
        assert re.search(r"^provider local \(local\): (namespace|fallback) mode", text, re.M), text
        got = {k: flavors["small"][k] for k in want}
        assert got == want, (got, text)
        assert {r["runner"] for r in runners} == set(env.instances()), text
        by_name = {r["name"]: r for r in st["runners"]}
        for r in runners:
            assert r["github"] == ("busy" if r["runner"] == name else "idle"), text
            assert r["cloud"] == "active" and r["health"] == "healthy" and r["flavor"] == "small", text
            assert re.fullmatch(r"(\d+[dhm])?\d+[smh]", r["age"]), text
            j = by_name[r["runner"]]
            assert (j["github_state"], j["cloud_state"], j["health"]) == (r["github"], r["cloud"], r["health"])
        # scale-down to zero
        env.write_config(flavors=[dict(SMALL, min_idle=0)])
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: env.idle_count() == 0, 60, "scale-down of idle runners")
        assert name in env.instances()
        # idle flush
        env.run("flush")
        assert name in env.instances()
        # list failure
        applied = env.stats()["faults_applied"]
        env.gh("POST", "/_ghsim/faults", {"match": "/actions/runners", "method": "GET", "status": 500,
                                          "count": -1})
        out = env.run("reconcile", check=False).stdout
        assert "(no deletions)" in out, out
        out = env.run("flush", check=False).stdout
        assert "(no deletions)" in out and not re.search(r"^delete", out, re.M), out
        assert env.stats()["faults_applied"] > applied
        assert name in env.instances()
        env.gh("DELETE", "/_ghsim/faults")
        assert env.stats()["killed_jobs"] == 0
        assert job(env, jid)["status"] == "in_progress"
        # flush --busy removes it
        env.run("flush", "--busy")
        env.wait(lambda: name not in env.instances(), 30, "busy instance removed")
        env.wait(lambda: env.stats()["killed_jobs"] == 1, 30, "killed job recorded")
        env.wait(lambda: name not in names(env.gh_runners()), 60, "runner removed")
        no_leak(env, killed=1)
        assert env.stop() == 0
        # the daemon's log: one JSON object per line
        lines = open(jlog).read().splitlines()
        assert len(lines) > 5, lines
        for ln in lines:
            o = json.loads(ln)
            assert isinstance(o, dict) and set(o) >= {"ts", "level", "msg"}, ln
        msgs = [json.loads(ln)["msg"] for ln in lines]
        assert any(re.match(r"create %s flavor=small" % NAME_RE, m) for m in msgs), msgs
        assert any(m.startswith("delete %s " % name) for m in msgs), msgs
    finally:
        env.close()


def test_delete_race_422_keeps_runner():
    """A runner that turns busy between runnerd's list and its delete
    (GitHub answers 422) keeps its instance and its row; its job finishes."""
    env = Env("race", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        before = set(env.instances())
        # a job no runner's labels match: it waits...
        jid = env.queue_job(["small", "e2e-race"], duration=4)["id"]
        # ...until runnerd deletes a runner it listed idle: ghsim hands the
        # job to that runner just before answering the DELETE
        env.gh("POST", "/_ghsim/faults", {"match": "/actions/runners/", "method": "DELETE",
                                          "assign_job": jid, "count": 1})
        out = env.run("flush").stdout
        assert env.stats()["faults_applied"] == 1, "the fault did not fire:\n%s" % out
        name = job(env, jid)["runner_name"]
        assert name, "the job was not handed to a runner:\n%s" % out
        assert re.search(r"^delete\s+%s .*kept" % name, out, re.M), out
        assert name in env.instances(), "the instance of a busy runner was deleted"
        assert name in env.store_rows(), "the store row of a busy runner was deleted"
        assert [r for r in env.gh_runners() if r["name"] == name and r["busy"]]
        # the other idle runner went as flushed
        assert not (before - {name}) & set(env.instances()), (before, env.instances())
        j = env.wait(lambda: completed(env, jid), 60, "the job completes")
        assert j["conclusion"] == "success" and not j["killed"], j
        env.wait(lambda: name not in env.instances() and name not in names(env.gh_runners())
                 and env.idle_count() == 2, 60, "finished runner replaced")
        no_leak(env)
    finally:
        env.close()


def test_drain_waits_for_busy_jobs():
    env = Env("drain", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        jid = env.queue_job(["small"], duration=6)["id"]
        busy_runner(env, jid)
        t0 = time.time()
        env.run("drain", "--wait", "--timeout", "90s", timeout=150)
        j = job(env, jid)
        assert j["status"] == "completed" and not j["killed"], j
        assert time.time() - t0 > 3
        assert env.gh_runners() == [] and env.instances() == []
        assert env.stats()["killed_jobs"] == 0
        # drain survives a restart; resume refills
        env.stop()
        env.serve()
        time.sleep(4)
        assert env.instances() == []
        env.run("resume")
        env.wait(lambda: env.idle_count() == 2, 60, "refilled after resume")
        no_leak(env)
    finally:
        env.close()


def assert_no_secret(env, secrets_, status_out):
    cmdlines = all_cmdlines()
    db = open(os.path.join(env.state, "state.db"), "rb").read()
    for secret in secrets_:
        assert secret not in env.log(), "secret in the log"
        assert secret not in cmdlines, "secret in a command line"
        assert secret not in status_out, "secret in status"
        assert secret.encode() not in db, "secret in the state database"


def test_no_secret_in_logs_argv_or_status_and_jobs_cannot_read_state():
    env = Env("secrets", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        st = env.run("status").stdout + env.run("status", "--json").stdout
        jits = instance_secrets(env, "ACTIONS_RUNNER_INPUT_JITCONFIG")
        assert jits, "no JIT config found in any instance's environment"
        assert_no_secret(env, [TOKEN] + sorted(jits), st)
        # the user jobs run as cannot read the state db or the token
        name = env.instances()[0]
        pids = instance_pids(env, name)
        assert pids
        st_ = os.stat("/proc/%d" % pids[0])
        assert st_.st_uid != 0, "instance runs as root"
        for path in [os.path.join(env.state, "state.db"), env.token_file]:
            r = subprocess.run(["setpriv", "--reuid=%d" % st_.st_uid, "--regid=%d" % st_.st_gid,
                                "--clear-groups", "cat", path], capture_output=True)
            assert r.returncode != 0, "the job user can read %s" % path
        assert oct(os.stat(os.path.join(env.state, "state.db")).st_mode & 0o777) == "0o600"
        no_leak(env)
    finally:
        env.close()


def test_registration_token_path_without_jit():
    """runner.jit: false: config.sh with a registration token, then run.sh."""
    env = Env("regtoken", [SMALL], extra_lines=["runner:", "  jit: false"])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        tokens = instance_secrets(env, "ACTIONS_RUNNER_INPUT_TOKEN")
        assert tokens, "no registration token found in any instance's environment"
        assert all(re.fullmatch(r"[A-Z0-9]{29}", t) for t in tokens), "not a registration token"
        routes = env.stats()["by_route"]
        assert sum(v for k, v in routes.items() if k.endswith("/registration-token")) >= 1, routes
        assert not [k for k in routes if "generate-jitconfig" in k], routes
        assert all(r["os"] == "Linux" for r in env.gh_runners()), "registered by JIT, not by config.sh"
        # a job runs; its runner is replaced by another registered the same way
        before = names(env.gh_runners())
        jid = env.queue_job(["small"], duration=1)["id"]
        j = env.wait(lambda: completed(env, jid), 60, "job completed")
        assert j["runner_name"] in before and j["conclusion"] == "success" and not j["killed"], j
        env.wait(lambda: env.idle_count() == 2 and j["runner_name"] not in names(env.gh_runners())
                 and j["runner_name"] not in env.instances(), 60, "replacement")
        tokens |= instance_secrets(env, "ACTIONS_RUNNER_INPUT_TOKEN")
        st = env.run("status").stdout + env.run("status", "--json").stdout
        assert_no_secret(env, [TOKEN] + sorted(tokens), st)
        no_leak(env)
    finally:
        env.close()


class AppEnv(Env):
    """An Env whose runnerd authenticates as a GitHub App: ghsim is restarted
    with the App's public key and mints installation tokens in token_format
    ("stateless": GitHub's 2026 ghs_<APP ID>_<JWT>, ~520 characters)."""
    APP_ID, INSTALLATION_ID = 4242, 777

    def __init__(self, name, flavors, token_format="stateless", heartbeat=3, **kw):
        from ghsim import Ghsim

        self.app_key = None
        super().__init__(name, flavors, heartbeat=heartbeat, **kw)
        key, pub = os.path.join(self.secrets, "app.pem"), os.path.join(self.secrets, "app.pub")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", key], check=True, capture_output=True)
        os.chmod(key, 0o600)
        subprocess.run(["openssl", "pkey", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
        self.ghsim.stop()
        self.ghsim = Ghsim(self.tmp, "--heartbeat-timeout", str(heartbeat), "--app-id", str(self.APP_ID),
                           "--app-public-key", pub, "--installation-id", str(self.INSTALLATION_ID),
                           token=TOKEN, token_file=self.token_file).start(timeout=20)
        self.url, self.ghsim_log, self.app_key = self.ghsim.url, self.ghsim.log, key
        self.gh("POST", "/_ghsim/app", {"token_format": token_format})
        self.write_config()

    def write_config(self, flavors=None, **manager_opts):
        super().write_config(flavors, **manager_opts)
        if not self.app_key:
            return
        with open(self.config) as f:
            text = f.read()
        app = "  app:\n    app_id: %d\n    installation_id: %d\n    private_key_file: %s\n" % (
            self.APP_ID, self.INSTALLATION_ID, self.app_key)
        text = text.replace("  token_file: %s\n" % self.token_file, app, 1)
        assert app in text, "no token_file line to replace"
        with open(self.config, "w") as f:
            f.write(text)


def token_pieces(token):
    """16 bytes from every 8th byte of token, and its last 16: any 23 bytes in
    a row of it hold one, wherever it was cut."""
    return [token[i:i + 16] for i in list(range(0, len(token) - 15, 8)) + [len(token) - 16]]


def test_github_app_with_long_installation_tokens():
    """runnerd as a GitHub App whose installation tokens have GitHub's 2026
    stateless format (~520 characters): runners are registered and run a job;
    after GitHub refuses the token (a 401) runnerd takes a fresh one, now in
    the classic 40-character format, and runs the next job; it never asks for
    a format (X-GitHub-Stateless-S2S-Token); no token, nor any piece of one,
    reaches the log, argv, status or the state database."""
    env = AppEnv("app", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        jid = env.queue_job(["small"], duration=1)["id"]
        j = env.wait(lambda: completed(env, jid), 60, "job completed")
        assert j["conclusion"] == "success" and not j["killed"], j
        app = env.gh("GET", "/_ghsim/app")
        assert app["issued"]["stateless"] >= 1 and app["issued"]["classic"] == 0, app["issued"]
        assert all(len(t["token"]) >= 400 for t in app["tokens"]), "not the long format"
        # GitHub refuses the token (revoked); the next one comes in the other format
        env.gh("POST", "/_ghsim/app", {"token_format": "classic"})
        env.gh("POST", "/_ghsim/faults", {"match": "/actions/runners", "status": 401, "count": 1})
        env.wait(lambda: env.gh("GET", "/_ghsim/app")["issued"]["classic"] >= 1, 30, "a fresh token")
        jid = env.queue_job(["small"], duration=1)["id"]
        j = env.wait(lambda: completed(env, jid), 60, "job completed with the fresh token")
        assert j["conclusion"] == "success" and not j["killed"], j
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle again")
        app = env.gh("GET", "/_ghsim/app")
        assert sum(app["s2s_header"].values()) == 0, "runnerd asked for a token format: %s" % app["s2s_header"]
        tokens = [t["token"] for t in app["tokens"]]
        st = env.run("status").stdout + env.run("status", "--json").stdout
        jits = instance_secrets(env, "ACTIONS_RUNNER_INPUT_JITCONFIG")
        assert jits, "no JIT config found in any instance's environment"
        assert_no_secret(env, [TOKEN] + tokens + sorted(jits), st)
        assert_no_secret(env, sorted({p for t in tokens for p in token_pieces(t)}), st)
        no_leak(env)
    finally:
        env.close()


def test_sighup_bad_config_is_refused_and_sigterm_is_prompt():
    env = Env("signals", [SMALL])
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle")
        with open(env.config, "a") as f:
            f.write("bogus_key: 1\n")
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: "reload refused" in env.log(), 10, "reload refused")
        assert env.daemon.poll() is None
        t0 = time.time()
        assert env.stop() == 0
        assert time.time() - t0 < 10
        assert len(env.instances()) == 2, "instances must survive a daemon stop"
        env.write_config()
        env.serve()  # a restart adopts them
        time.sleep(4)
        assert len(env.instances()) == 2 and env.idle_count() == 2
        no_leak(env)
    finally:
        env.close()


if __name__ == "__main__":
    main([test_pool_reaches_min_idle_and_stays, test_job_runs_and_runner_is_replaced,
          test_max_never_exceeded_under_burst, test_kill9_during_creates_then_restart,
          test_kill9_leaves_temporaries_the_next_start_removes,
          test_faults_cause_no_deletion_and_recover, test_instance_killed_behind_our_back_is_replaced,
          test_offline_runner_cleaned_after_timeout, test_busy_runner_survives_then_flush_busy_status_and_json_log,
          test_delete_race_422_keeps_runner, test_drain_waits_for_busy_jobs,
          test_no_secret_in_logs_argv_or_status_and_jobs_cannot_read_state,
          test_registration_token_path_without_jit, test_github_app_with_long_installation_tokens,
          test_sighup_bad_config_is_refused_and_sigterm_is_prompt])
