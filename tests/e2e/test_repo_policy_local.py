#!/usr/bin/env python3
"""The repo-policy check on the local provider (issue 12): the real runnerd
asks the compliance double (tests/lib/policy_double.py) for a one-time token
per runner and hands it over in the runner's environment; the pre-job hook
spends it on ghsim jobs carrying GitHub's example payloads. A push is
allowed; a pull request from a fork is refused: the job fails before its
step, the post-job metrics say repo-policy-check-failure with the HTTP code,
and the runner ends. The LXD side: tests/e2e/test_lxd_runner_env.py."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import Env, main  # noqa: E402
from policy_double import PolicyDouble, payloads  # noqa: E402

REPO = "octo/hello"
FORK = "forker/hello"


def queue(env, event, payload, run, workflow, head_branch="main", head_sha=None):
    body = {"repo": REPO, "labels": ["self-hosted", "pol"], "duration": 1, "workflow": workflow,
            "event": event, "event_payload": payload, "run": run, "head_branch": head_branch}
    if head_sha:
        body["head_sha"] = head_sha
    return env.gh("POST", "/_ghsim/jobs", body)


def test_local_one_time_tokens_push_allowed_fork_pr_refused():
    policy = PolicyDouble()
    env = None
    try:
        env = Env("policy-local", [{"name": "pol", "labels": ["pol"], "min_idle": 2, "max": 2}])
        token_file = os.path.join(env.secrets, "policy-token")
        with open(token_file, "w") as f:
            f.write(policy.token + "\n")
        os.chmod(token_file, 0o600)
        env.extra_lines = ["runner:", "  repo_policy_compliance:", "    url: http://127.0.0.1:%d" % policy.port,
                           "    token_file: %s" % token_file]
        env.write_config()
        env.serve()
        env.wait(lambda: env.idle_count() == 2, 60, "2 idle runners")
        assert len(policy.issued) >= 2, policy.issued
        marker = os.path.join(env.tmp, "pr-step-ran")
        pr, push, _ = payloads(REPO, FORK)
        prh = pr["pull_request"]["head"]
        pj = queue(env, "push", push, "true", "pol-push", head_sha=push["after"])
        prj = queue(env, "pull_request", pr, "touch %s" % marker, "pol-pr", head_branch=prh["ref"],
                    head_sha=prh["sha"])

        def done(jid):
            j = env.gh("GET", "/_ghsim/jobs/%d" % jid)
            return j if j["status"] == "completed" else None
        assert env.wait(lambda: done(pj["id"]), 60, "the push job")["conclusion"] == "success"
        assert env.wait(lambda: done(prj["id"]), 60, "the PR job")["conclusion"] == "failure"
        assert not os.path.exists(marker), "the refused job's step ran"
        checks = {c["path"]: c for c in policy.checks}
        assert sorted(checks) == ["/pull_request/check-run", "/push/check-run"], policy.checks
        assert all(c["ok_token"] for c in policy.checks), policy.checks
        assert checks["/push/check-run"]["body"] == {"repository_name": REPO}, checks
        assert checks["/pull_request/check-run"]["body"] == {
            "repository_name": REPO, "source_repository_name": FORK, "target_branch_name": "main",
            "source_branch_name": prh["ref"], "commit_sha": prh["sha"]}, checks
        def both_stops():
            got = {ev["workflow"]: ev for ev in env.events("runner_stop") if ev.get("workflow") in ("pol-push", "pol-pr")}
            return got if len(got) == 2 else None
        stops = env.wait(both_stops, 60, "both runner_stop events")
        assert stops["pol-push"]["status"] == "normal", stops
        assert stops["pol-pr"]["status"] == "repo-policy-check-failure", stops
        assert stops["pol-pr"]["status_info"] == {"code": 403}, stops
        log = env.log()
        assert policy.token not in log and not [t for t in policy.issued if t in log]
        env.run("drain", "--wait", "--timeout", "60s", timeout=120)
        env.assert_nothing_left()
    finally:
        if env is not None:
            env.close()
        policy.close()


if __name__ == "__main__":
    main([test_local_one_time_tokens_push_allowed_fork_pr_refused])
