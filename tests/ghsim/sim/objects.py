"""GitHub's JSON objects as the REST API and webhooks show them: users,
repositories, organizations, runners, workflow jobs and runs, and the two
endpoints that return a repository or an organization. Pure functions of
what they are given: they never touch ghsim's state.
"""

import hashlib
import re

from .common import DOCS, RUN_ID_BASE, Resp, iso, stable_id
from .routes import route


def simple_user(login, base, html, kind="User"):
    uid = stable_id("user:" + login, 1_000_000)
    u = "%s/users/%s" % (base, login)
    return {
        "login": login, "id": uid, "node_id": ("U_kgDO%X" if kind == "User" else "O_kgDO%X") % uid,
        "avatar_url": "%s/avatars/u/%d?v=4" % (html, uid), "gravatar_id": "", "url": u,
        "html_url": "%s/%s" % (html, login), "followers_url": u + "/followers",
        "following_url": u + "/following{/other_user}", "gists_url": u + "/gists{/gist_id}",
        "starred_url": u + "/starred{/owner}{/repo}", "subscriptions_url": u + "/subscriptions",
        "organizations_url": u + "/orgs", "repos_url": u + "/repos", "events_url": u + "/events{/privacy}",
        "received_events_url": u + "/received_events", "type": kind, "site_admin": False,
    }


def repo_obj(full, base, html, permissions=True):
    owner, name = full.split("/", 1)
    rid = stable_id("repo:" + full)
    u = "%s/repos/%s" % (base, full)
    h = "%s/%s" % (html, full)
    created = 1609459200
    r = {
        "id": rid, "node_id": "R_kgDO%X" % rid, "name": name, "full_name": full,
        "private": True, "owner": simple_user(owner, base, html, "Organization"), "html_url": h,
        "description": None, "fork": False, "url": u, "forks_url": u + "/forks",
        "keys_url": u + "/keys{/key_id}", "collaborators_url": u + "/collaborators{/collaborator}",
        "teams_url": u + "/teams", "hooks_url": u + "/hooks", "issue_events_url": u + "/issues/events{/number}",
        "events_url": u + "/events", "assignees_url": u + "/assignees{/user}",
        "branches_url": u + "/branches{/branch}", "tags_url": u + "/tags", "blobs_url": u + "/git/blobs{/sha}",
        "git_tags_url": u + "/git/tags{/sha}", "git_refs_url": u + "/git/refs{/sha}",
        "trees_url": u + "/git/trees{/sha}", "statuses_url": u + "/statuses/{sha}",
        "languages_url": u + "/languages", "stargazers_url": u + "/stargazers",
        "contributors_url": u + "/contributors", "subscribers_url": u + "/subscribers",
        "subscription_url": u + "/subscription", "commits_url": u + "/commits{/sha}",
        "git_commits_url": u + "/git/commits{/sha}", "comments_url": u + "/comments{/number}",
        "issue_comment_url": u + "/issues/comments{/number}", "contents_url": u + "/contents/{+path}",
        "compare_url": u + "/compare/{base}...{head}", "merges_url": u + "/merges",
        "archive_url": u + "/{archive_format}{/ref}", "downloads_url": u + "/downloads",
        "issues_url": u + "/issues{/number}", "pulls_url": u + "/pulls{/number}",
        "milestones_url": u + "/milestones{/number}",
        "notifications_url": u + "/notifications{?since,all,participating}", "labels_url": u + "/labels{/name}",
        "releases_url": u + "/releases{/id}", "deployments_url": u + "/deployments",
        "created_at": iso(created), "updated_at": iso(created + 3600), "pushed_at": iso(created + 7200),
        "git_url": "git://%s/%s.git" % (html.split("://", 1)[-1], full),
        "ssh_url": "git@%s:%s.git" % (html.split("://", 1)[-1].split(":")[0], full),
        "clone_url": h + ".git", "svn_url": h, "homepage": None, "size": 1, "stargazers_count": 0,
        "watchers_count": 0, "language": None, "has_issues": True, "has_projects": True,
        "has_downloads": True, "has_wiki": True, "has_pages": False, "has_discussions": False,
        "forks_count": 0, "mirror_url": None, "archived": False, "disabled": False, "open_issues_count": 0,
        "license": None, "allow_forking": False, "is_template": False, "web_commit_signoff_required": False,
        "topics": [], "visibility": "private", "custom_properties": {}, "forks": 0, "open_issues": 0, "watchers": 0,
        "default_branch": "main",
    }
    if permissions:
        r["permissions"] = {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True}
        r["network_count"] = 0
        r["subscribers_count"] = 0
    return r


def org_obj(login, base, html, full=True):
    oid = stable_id("user:" + login, 1_000_000)
    u = "%s/orgs/%s" % (base, login)
    o = {
        "login": login, "id": oid, "node_id": "O_kgDO%X" % oid, "url": u, "repos_url": u + "/repos",
        "events_url": u + "/events", "hooks_url": u + "/hooks", "issues_url": u + "/issues",
        "members_url": u + "/members{/member}", "public_members_url": u + "/public_members{/member}",
        "avatar_url": "%s/avatars/u/%d?v=4" % (html, oid), "description": None,
    }
    if full:
        o.update({
            "name": login, "twitter_username": None, "is_verified": False, "has_organization_projects": True,
            "has_repository_projects": True, "public_repos": 0, "public_gists": 0, "followers": 0,
            "following": 0, "html_url": "%s/%s" % (html, login), "type": "Organization",
            "created_at": iso(1577836800), "updated_at": iso(1609459200), "archived_at": None,
        })
    return o


def runner_obj(r):
    return {"id": r.id, "name": r.name, "os": r.os, "status": "online" if r.online() else "offline",
            "busy": r.busy, "ephemeral": r.ephemeral, "version": r.version,
            "labels": [{"id": i, "name": n, "type": t} for i, n, t in r.labels],
            "runner_group_id": r.group_id}


def job_obj(j, base, html):
    created = iso(j.created_at)
    started = iso(j.started_at) if j.started_at else created
    steps = []
    if j.status == "in_progress":
        steps = [{"name": "Set up job", "status": "in_progress", "conclusion": None, "number": 1,
                  "started_at": started, "completed_at": None}]
    elif j.status == "completed" and j.started_at:
        done = iso(j.completed_at)
        steps = [{"name": "Set up job", "status": "completed", "conclusion": "success", "number": 1,
                  "started_at": started, "completed_at": started},
                 {"name": "Run job", "status": "completed",
                  "conclusion": "cancelled" if j.killed else j.conclusion, "number": 2,
                  "started_at": started, "completed_at": done}]
        if not j.killed:
            steps.append({"name": "Complete job", "status": "completed", "conclusion": "success",
                          "number": 3, "started_at": done, "completed_at": done})
    u = "%s/repos/%s" % (base, j.repo)
    d = {
        "id": j.id, "run_id": j.run_id, "workflow_name": j.workflow, "head_branch": j.head_branch,
        "run_url": "%s/actions/runs/%d" % (u, j.run_id), "run_attempt": 1,
        "node_id": "CR_kwDO%X" % j.id, "head_sha": j.head_sha,
        "url": "%s/actions/jobs/%d" % (u, j.id),
        "html_url": "%s/%s/actions/runs/%d/job/%d" % (html, j.repo, j.run_id, j.id),
        "status": j.status, "conclusion": j.conclusion, "created_at": created, "started_at": started,
        "completed_at": iso(j.completed_at) if j.completed_at else None, "name": j.name, "steps": steps,
        "check_run_url": "%s/check-runs/%d" % (u, j.id), "labels": list(j.labels),
        "runner_id": j.runner_id, "runner_name": j.runner_name, "runner_group_id": j.runner_group_id,
        "runner_group_name": j.runner_group_name,
    }
    return d


def run_state(jobs):
    """A run's (status, conclusion) from its jobs: completed when all are,
    in_progress once any has started, else queued; a completed run is
    cancelled if any job was, else failure if any failed, else success."""
    if all(j.status == "completed" for j in jobs):
        got = {j.conclusion for j in jobs}
        return "completed", "cancelled" if "cancelled" in got else "failure" if "failure" in got else "success"
    if any(j.status in ("in_progress", "completed") for j in jobs):
        return "in_progress", None
    return "queued", None


def run_obj(repo, run_id, jobs, base, html):
    """A workflow run as GitHub lists it, made of the jobs that share its run
    id (ghsim keeps no run objects): the first job queued gives its workflow,
    event, branch and commit."""
    first = min(jobs, key=lambda j: (j.created_at, j.id))
    status, conclusion = run_state(jobs)
    created = first.created_at
    updated = max(t for j in jobs for t in (j.created_at, j.started_at, j.completed_at) if t)
    owner = repo.split("/", 1)[0]
    wf_id = stable_id("workflow:%s:%s" % (repo, first.workflow))
    wf_file = re.sub(r"[^a-z0-9_.-]+", "-", first.workflow.lower()).strip("-.") or "workflow"
    suite_id = stable_id("check-suite:%s:%d" % (repo, run_id), 20_000_000_000)
    u = "%s/repos/%s" % (base, repo)
    ru = "%s/actions/runs/%d" % (u, run_id)
    actor = simple_user("octocat", base, html)
    minimal = repo_obj(repo, base, html, permissions=False)
    return {
        "id": run_id, "name": first.workflow, "node_id": "WFR_kwLO%X" % run_id,
        "head_branch": first.head_branch, "head_sha": first.head_sha,
        "path": ".github/workflows/%s.yml" % wf_file, "display_title": first.workflow,
        # run ids start at RUN_ID_BASE + 1: the run number counts up from there
        "run_number": (run_id - RUN_ID_BASE - 1) % 10_000_000 + 1, "event": first.event,
        "status": status, "conclusion": conclusion, "workflow_id": wf_id,
        "check_suite_id": suite_id, "check_suite_node_id": "CS_kwDO%X" % suite_id,
        "url": ru, "html_url": "%s/%s/actions/runs/%d" % (html, repo, run_id), "pull_requests": [],
        "created_at": iso(created), "updated_at": iso(updated), "actor": actor, "run_attempt": 1,
        "referenced_workflows": [], "run_started_at": iso(created), "triggering_actor": actor,
        "jobs_url": ru + "/jobs", "logs_url": ru + "/logs", "check_suite_url": "%s/check-suites/%d" % (u, suite_id),
        "artifacts_url": ru + "/artifacts", "cancel_url": ru + "/cancel", "rerun_url": ru + "/rerun",
        "previous_attempt_url": None, "workflow_url": "%s/actions/workflows/%d" % (u, wf_id),
        "head_commit": {
            "id": first.head_sha, "tree_id": hashlib.sha1(("tree:" + first.head_sha).encode()).hexdigest(),
            "message": first.workflow, "timestamp": iso(created),
            "author": {"name": owner, "email": "%s@users.noreply.github.com" % owner.lower()},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": minimal, "head_repository": minimal, "head_repository_id": minimal["id"],
    }


@route("GET", "/repos/{owner}/{repo}", doc=DOCS + "/repos/repos#get-a-repository")
def h_repo(h, req):
    req.scope()
    return Resp(200, repo_obj("%s/%s" % (req.params["owner"], req.params["repo"]), req.base, req.html))


@route("GET", "/orgs/{org}", doc=DOCS + "/orgs/orgs#get-an-organization")
def h_org(h, req):
    req.scope()
    return Resp(200, org_obj(req.params["org"], req.base, req.html))
