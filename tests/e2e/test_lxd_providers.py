#!/usr/bin/env python3
"""End-to-end: one manager, two LXD providers on the real LXD. Providers
are named instances (providers.lxd-east, providers.lxd-west, both of type
lxd), each in a project of its own on the test LXD (made here with
tests/lib/lxd.sh as test_lxd.py makes its one: own images, own profiles,
a ghsim proxy profile each), and one flavor names each. The scenario
checks that each flavor's instances land in its own project only and carry
its flavor, that their runners come online on ghsim with their flavor's
labels, that a job of each flavor runs there and its instance is deleted
from that project and replaced there, that a scale-down after a SIGHUP
deletes in the right project, and that a drain leaves nothing in either
project nor on GitHub. Both projects are removed at the end. A run where
LXD cannot be had fails; it never skips."""

import os
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Env, run_tests, summary  # noqa: E402
from lxd_harness import LxdError, LxdSetup, lib, sh_quote  # noqa: E402

PROJECTS = {
    "lxd-east": os.environ.get("RUNNERD_E2E_LXD_PROJECT_EAST", "runnerd-e2e-east"),
    "lxd-west": os.environ.get("RUNNERD_E2E_LXD_PROJECT_WEST", "runnerd-e2e-west"),
}
SETUPS = {}  # provider name -> LxdSetup of its project


class TwoLxdEnv(Env):
    """Env with two LXD providers, one project each; flavors name theirs."""

    def __init__(self, name, flavors, **manager_opts):
        manager = "lx" + name
        self.profile = "ghsim-" + manager
        self.images = {p: s.image("busybox") for p, s in SETUPS.items()}
        flavors = [dict(f, image=self.images[f["provider"]]) for f in flavors]
        opts = dict(bootstrap_timeout="60s")
        opts.update(manager_opts)
        super().__init__(name, flavors, manager=manager, heartbeat=3, **opts)
        for s in SETUPS.values():
            try:
                s.api.call("DELETE", "/1.0/profiles/%s" % self.profile)
            except LxdError:
                pass
            rc, out, err = lib("lxd_proxy_profile %s %s %d" % (sh_quote(s.project), self.profile,
                                                                self.ghsim.port))
            if rc != 0:
                raise RuntimeError(err)

    def provider_lines(self):
        lines = ["providers:"]
        for pname, s in SETUPS.items():
            lines += ["  %s:" % pname, "    type: lxd", "    socket: %s" % s.vars["LXD_SOCKET"],
                      "    project: %s" % s.project, "    network: %s" % s.vars["LXD_TEST_NETWORK"],
                      "    storage_pool: %s" % s.vars["LXD_TEST_POOL"],
                      "    profiles: [default, %s]" % self.profile, "    bootstrap: exec",
                      "    stop_timeout: 2s"]
        return lines

    def in_project(self, pname):
        """Name -> LXD instance object of this manager's instances in pname's project."""
        got = SETUPS[pname].api.call("GET", "/1.0/instances?recursion=1")
        return {i["name"]: i for i in got if i["name"].startswith(self.manager + "-")}

    def instances(self):
        out = set()
        for pname in SETUPS:
            out |= set(self.in_project(pname))
        return sorted(out)

    def sized(self, sizes):
        """The flavors with new (min_idle, max) by flavor name."""
        return [dict(f, min_idle=sizes[f["name"]][0], max=sizes[f["name"]][1]) if f["name"] in sizes else f
                for f in self.flavors]

    def close(self):
        try:
            super().close()
        finally:
            for s in SETUPS.values():
                try:
                    left = s.api.instances(self.manager + "-")
                except (LxdError, OSError):
                    left = {}
                for name in left:
                    try:
                        s.api.delete(name)
                    except LxdError as e:
                        print("# could not delete %s in %s: %s" % (name, s.project, e))
                try:
                    s.api.call("DELETE", "/1.0/profiles/%s" % self.profile)
                except LxdError:
                    pass


def gh_names(env):
    return {r["name"] for r in env.gh_runners()}


def placed(env, flavor_of):
    """Every instance of this manager in the project of its flavor's provider,
    marked with that flavor and this manager, running, its runner on GitHub
    with the flavor's label; returns {provider: set of names}."""
    out = {}
    runners = {r["name"]: r for r in env.gh_runners()}
    for pname in SETUPS:
        out[pname] = set()
        for name, inst in env.in_project(pname).items():
            cfg = inst["config"]
            flavor = cfg.get("user.runnerd.flavor")
            assert flavor_of.get(flavor) == pname, \
                "%s (flavor %r) is in the project of %s" % (name, flavor, pname)
            assert cfg.get("user.runnerd.manager") == env.manager, cfg.get("user.runnerd.manager")
            assert inst["project"] == SETUPS[pname].project, inst["project"]
            if name in runners:
                labels = set(runners[name]["labels"])
                assert flavor in labels, (name, flavor, labels)
            out[pname].add(name)
    both = out["lxd-east"] & out["lxd-west"]
    assert not both, "in both projects: %s" % both
    return out


def test_two_projects_each_flavor_in_its_own():
    flavors = [dict(name="east", provider="lxd-east", labels=["east"], min_idle=2, max=2),
               dict(name="west", provider="lxd-west", labels=["west"], min_idle=1, max=2)]
    flavor_of = {"east": "lxd-east", "west": "lxd-west"}
    env = TwoLxdEnv("two", flavors)
    try:
        env.serve()
        env.wait(lambda: env.idle_count() == 3, 120, "3 idle runners (2 east, 1 west)")
        first = placed(env, flavor_of)
        assert len(first["lxd-east"]) == 2 and len(first["lxd-west"]) == 1, first
        assert gh_names(env) == first["lxd-east"] | first["lxd-west"], (gh_names(env), first)
        assert all(r["status"] == "online" for r in env.gh_runners()), env.gh_runners()
        for pname in SETUPS:
            assert all(i["status"] == "Running" for i in env.in_project(pname).values())

        # a job of each flavor runs in its own project; the used instances
        # are deleted there and replaced there
        je = env.queue_job(["self-hosted", "east"], duration=1)
        jw = env.queue_job(["self-hosted", "west"], duration=1)
        ids = {je["id"]: "lxd-east", jw["id"]: "lxd-west"}

        def completed():
            got = [j for j in env.jobs() if j["id"] in ids and j["status"] == "completed"]
            return got if len(got) == 2 else None
        done = env.wait(completed, 90, "both jobs completed")
        used = set()
        for j in done:
            assert j["runner_name"] in first[ids[j["id"]]], \
                "job %s (%s) ran on %s, not in %s" % (j["id"], j["labels"], j["runner_name"], first)
            assert j["conclusion"] == "success", j
            used.add(j["runner_name"])
        env.wait(lambda: env.idle_count() == 3 and not (gh_names(env) & used) and not (set(env.instances()) & used),
                 120, "used instances deleted and replaced")
        second = placed(env, flavor_of)
        assert len(second["lxd-east"]) == 2 and len(second["lxd-west"]) == 1, second
        assert second["lxd-east"] >= first["lxd-east"] - used, (first, second)
        assert second["lxd-west"] >= first["lxd-west"] - used, (first, second)

        # scale-down after a SIGHUP: east to 1, west to 0 (max is at least 1);
        # each delete in its own project
        env.write_config(flavors=env.sized({"east": (1, 1), "west": (0, 1)}))
        env.daemon.send_signal(signal.SIGHUP)
        env.wait(lambda: len(env.in_project("lxd-east")) == 1 and not env.in_project("lxd-west")
                 and len(gh_names(env)) == 1, 90, "scaled down to 1 east, 0 west")
        third = placed(env, flavor_of)
        assert third["lxd-east"] < second["lxd-east"], (second, third)
        assert gh_names(env) == third["lxd-east"], (gh_names(env), third)
        assert env.daemon.poll() is None, "runnerd exited on SIGHUP"

        # drain: nothing left in either project nor on GitHub
        env.run("drain", "--wait", "--timeout", "120s", timeout=180)
        assert env.gh_runners() == [], env.gh_runners()
        for pname in SETUPS:
            assert env.in_project(pname) == {}, (pname, env.in_project(pname))
    finally:
        env.close()
    for pname, s in SETUPS.items():
        left = s.api.instances(env.manager + "-")
        assert left == {}, "left in %s: %s" % (s.project, left)


def run():
    setups = []
    failed = 0
    try:
        for pname, project in PROJECTS.items():
            s = LxdSetup(project)
            setups.append(s)
            s.start()
            SETUPS[pname] = s
    except Exception as e:
        print("LXD could not be set up: %s" % e, flush=True)
        for s in reversed(setups):
            s.close()
        sys.exit(summary(0, 1))
    passed = skipped = 0
    try:
        passed, failed, skipped = run_tests([test_two_projects_each_flavor_in_its_own])
    finally:
        # the second project first: the first setup's teardown (if it did the setup) comes last
        for s in reversed(setups):
            if not s.close():
                print("not ok - LXD cleanup of project %s" % s.project, flush=True)
                failed += 1
        for s in setups:
            try:
                s.api.call("GET", "/1.0/projects/%s" % s.project, project=False)
                print("not ok - project %s still there" % s.project, flush=True)
                failed += 1
            except (LxdError, OSError):
                pass
    sys.exit(summary(passed, failed, skipped))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    run()
