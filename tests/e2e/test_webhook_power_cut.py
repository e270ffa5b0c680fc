#!/usr/bin/env python3
"""End-to-end: webhook.answer_after, and the catch-up after a power cut.

- By default a delivery is answered once flushed (/healthz says "flush"),
  with `write` once written; `write` without hook_id says at a restart in
  another boot that nothing lost can be asked of GitHub again (and, in
  repository scope, that the sweep of the runs finds their jobs).
- A power cut, as the state directory sees it: runnerd is frozen
  (SIGSTOP) and its state database copied, then it answers more queued
  deliveries, is killed with SIGKILL, and the copy is put back (the
  deliveries answered after the copy are gone, as unflushed pages are
  after a power cut); then it starts in another boot (RUNNERD_BOOT_ID_FILE).
  Its first pass asks GitHub (ghsim's deliveries API) to redeliver each
  workflow_job delivery it lost, and no other; those jobs get runners and
  complete; a restart in the same boot catches up nothing.
- With `write`, a delivery is answered once in the intake's journal: the
  state database is held by another writer (its write lock taken from
  outside), queued deliveries are answered 202 all the same and wait in
  the journal (/healthz's journal_behind), runnerd is killed with SIGKILL,
  and the restart writes them to the database before it listens; their
  jobs get runners and complete. A file in the journal's place that is not
  one is moved aside, and runnerd serves.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import integrity_check, main  # noqa: E402
from test_webhooks import SECRET, get, post, reactive_env, rows, wait_intake  # noqa: E402

FLAVORS = [{"name": "small", "labels": ["small"], "min_idle": 0, "max": 4}]
HOOK_ID = 498765  # ghsim's hook


def healthz(env):
    return json.loads(get(env, "/healthz")[1])


def set_boot(path):
    with open(path, "w") as f:
        f.write(str(uuid.uuid4()) + "\n")


def delivered(env):
    """The ids of the deliveries the state database holds."""
    return {r[0] for r in rows(env, "SELECT id FROM deliveries")}


def test_answer_after_follows_the_config():
    boot = None
    for extra, want in (({}, "flush"), ({"hook_id": HOOK_ID}, "flush"),
                        ({"hook_id": HOOK_ID, "answer_after": "write"}, "write"),
                        ({"answer_after": "write"}, "write")):
        env = reactive_env("wh-answer", FLAVORS, webhook_extra=extra, reconcile_interval="1h")
        boot = os.path.join(env.tmp, "boot_id")
        os.environ["RUNNERD_BOOT_ID_FILE"] = boot
        try:
            set_boot(boot)
            env.serve()
            wait_intake(env)
            h = healthz(env)
            assert h["answer_after"] == want, (extra, h)
            assert h["journal_failed"] == 0 and h["checkpoint_failed"] == 0, h
            if want == "write" and "hook_id" not in extra:
                # a queued job written before the fsync, then a reboot: nothing can ask GitHub
                # for the delivery (repository scope: the sweep of the runs finds its job)
                body = json.dumps({"action": "queued", "repository": {"full_name": "octo/hello"},
                                   "workflow_job": {"id": 41, "run_id": 7, "status": "queued",
                                                    "labels": ["small"]}}).encode()
                assert post(env, body)[0] == 202
                env.stop()
                set_boot(boot)
                since = env.log_size()
                env.serve()
                wait_intake(env)
                env.wait(lambda: "without webhook.hook_id none lost can be asked of GitHub again, "
                         "and the sweep of the repository's runs finds the jobs they queued"
                         in env.log(since), 20, "the note")
            env.stop()
        finally:
            os.environ.pop("RUNNERD_BOOT_ID_FILE", None)
            env.close()


def test_power_cut_deliveries_are_caught_up():
    env = reactive_env("wh-power-cut", FLAVORS, webhook_extra={"hook_id": HOOK_ID, "backfill_interval": "1h",
                                                   "answer_after": "write"},
                       reconcile_interval="1h")
    boot = os.path.join(env.tmp, "boot_id")
    snap = os.path.join(env.tmp, "snapshot")
    os.environ["RUNNERD_BOOT_ID_FILE"] = boot
    ok = False
    try:
        set_boot(boot)
        env.serve()
        wait_intake(env)
        assert healthz(env)["answer_after"] == "write"
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port,
                                           "secret": SECRET})
        # a job before the cut: it runs, and its deliveries stay in the store
        first = env.queue_job(["small"], duration=1)["id"]
        env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % first)["status"] == "completed", 60,
                 "the first job completed")
        env.wait(lambda: len(env.gh("GET", "/_ghsim/webhooks")) >= 3 and
                 len(delivered(env)) >= 3, 20, "its three deliveries recorded")
        env.run("drain")  # the jobs to come wait: their runners come after the reboot
        env.wait(lambda: not env.instances(), 30, "no runner left")

        # what the disk holds at the cut: the database as it is now
        env.daemon.send_signal(signal.SIGSTOP)
        try:
            os.mkdir(snap)
            for name in ("state.db", "state.db-wal", "intake.journal"):
                if os.path.exists(os.path.join(env.state, name)):
                    shutil.copy2(os.path.join(env.state, name), os.path.join(snap, name))
        finally:
            env.daemon.send_signal(signal.SIGCONT)
        kept = delivered(env)

        # answered after it, then lost with the cut
        lost_jobs = [env.queue_job(["small"], duration=1)["id"] for _ in range(3)]
        env.wait(lambda: len(delivered(env)) >= len(kept) + 3, 20, "the three queued deliveries answered")
        sent = env.gh("GET", "/_ghsim/webhooks")
        assert all(200 <= d["status"] < 300 for d in sent), sent
        lost = delivered(env) - kept
        assert len(lost) == 3, lost
        env.daemon.send_signal(signal.SIGKILL)
        env.daemon.wait(10)
        env.daemon = None
        for name in ("state.db", "state.db-wal", "state.db-shm", "intake.journal"):
            p = os.path.join(env.state, name)
            if os.path.exists(p):
                os.unlink(p)
        for name in os.listdir(snap):
            shutil.copy2(os.path.join(snap, name), os.path.join(env.state, name))
        assert integrity_check(env.state) == "ok"
        assert delivered(env) == kept

        # another boot: the first pass catches up
        set_boot(boot)
        since = env.log_size()
        t0 = time.time()
        env.serve()
        wait_intake(env)
        env.run("resume")
        for jid in lost_jobs:
            env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["status"] == "completed", 90,
                     "job %d completed" % jid)
        took = time.time() - t0
        log = env.log(since)
        redelivered = set(re.findall(r"catch-up: delivery (\S+) \(workflow_job queued, answered 202 "
                                     r"before the restart\) redelivered", log))
        assert redelivered == lost, (redelivered, lost, log[-3000:])
        assert "catch-up: done" in log, log[-3000:]
        assert healthz(env)["caught_up"] == 3
        print("a power cut lost %d answered deliveries: redelivered after the reboot, their jobs completed "
              "%.1f s after the restart" % (len(lost), took))
        env.wait(lambda: not env.instances() and not env.gh_runners(), 30, "no runner left")

        # the same boot again: nothing to catch up
        env.stop()
        since = env.log_size()
        env.serve()
        wait_intake(env)
        env.run("reconcile")
        assert "catch-up" not in env.log(since), env.log(since)[-2000:]
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
        ok = True
    finally:
        os.environ.pop("RUNNERD_BOOT_ID_FILE", None)
        env.close(keep=not ok)


def test_journal_answers_survive_a_crash_before_the_database():
    env = reactive_env("wh-journal", FLAVORS, webhook_extra={"answer_after": "write"},
                       reconcile_interval="1h")
    ok = False
    lock = None
    try:
        env.serve()
        wait_intake(env)
        env.gh("POST", "/_ghsim/webhook", {"url": "http://127.0.0.1:%d/webhook" % env.hook_port,
                                           "secret": SECRET})
        # the database's write lock held from outside: runnerd's commits wait, then fail
        lock = sqlite3.connect(os.path.join(env.state, "state.db"), timeout=10, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        jobs = [env.queue_job(["small"], duration=1)["id"] for _ in range(3)]
        env.wait(lambda: healthz(env)["journal_behind"] == 3, 20, "three deliveries in the journal alone")
        sent = [d for d in env.gh("GET", "/_ghsim/webhooks") if d.get("action") == "queued"]
        assert len(sent) == 3 and all(d["status"] == 202 for d in sent), sent
        h = healthz(env)
        assert h["answer_after"] == "write" and h["queued"] == 0, h  # not in the queue yet
        env.daemon.send_signal(signal.SIGKILL)
        env.daemon.wait(10)
        env.daemon = None
        lock.execute("ROLLBACK")
        lock.close()
        lock = None
        assert integrity_check(env.state) == "ok"
        in_db = {r[0] for r in rows(env, "SELECT job_id FROM jobs")}
        assert not in_db & set(jobs), in_db  # the database never had them

        since = env.log_size()
        env.serve()
        wait_intake(env)
        assert "webhook journal: 3 deliveries answered before the restart written to the state store" in \
            env.log(since), env.log(since)[-2000:]
        h = healthz(env)
        assert h["queued"] == 3 and h["journal_behind"] == 0, h
        for jid in jobs:
            env.wait(lambda: env.gh("GET", "/_ghsim/jobs/%d" % jid)["status"] == "completed", 90,
                     "job %d completed" % jid)
        # the journal started over: a second restart has nothing to write
        env.stop()
        since = env.log_size()
        env.serve()
        wait_intake(env)
        assert "webhook journal" not in env.log(since), env.log(since)[-2000:]
        # a file that is not a journal: moved aside, a new one begun, and runnerd serves
        env.stop()
        with open(os.path.join(env.state, "intake.journal"), "wb") as f:
            f.write(b"not a journal at all")
        since = env.log_size()
        env.serve()
        wait_intake(env)
        assert "is not a journal (its header): moved to" in env.log(since), env.log(since)[-2000:]
        assert [n for n in os.listdir(env.state) if n.startswith("intake.journal.bad-")]
        assert healthz(env)["status"] == "ok"
        env.run("drain", "--wait", "--timeout", "60s", timeout=90)
        env.assert_nothing_left()
        ok = True
    finally:
        if lock:
            lock.close()
        env.close(keep=not ok)


if __name__ == "__main__":
    main([test_answer_after_follows_the_config, test_power_cut_deliveries_are_caught_up,
          test_journal_answers_survive_a_crash_before_the_database])
