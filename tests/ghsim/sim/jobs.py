"""Workflow jobs and runs: the REST calls that get a job, list a run's jobs
and list a repository's runs (made of its jobs), and the control calls with
which tests queue, list, read and cancel jobs. The job's life (queued,
assigned, in progress, completed) is State's.
"""

import re
import secrets

from .common import DOCS, HttpError, Resp, log, need
from .control import str_list
from .objects import job_obj, run_obj, run_state
from .routes import paginate, route


def repo_job(h, req, jid):
    j = h.server.state.jobs.get(jid)
    if j is None or j.repo.lower() != ("%s/%s" % (req.params["owner"], req.params["repo"])).lower():
        raise HttpError(404, "Not Found")
    return j


@route("GET", "/repos/{owner}/{repo}/actions/jobs/{job_id}",
       doc=DOCS + "/actions/workflow-jobs#get-a-job-for-a-workflow-run")
def h_get_job(h, req):
    return Resp(200, job_obj(repo_job(h, req, int(req.params["job_id"])), req.base, req.html))


@route("GET", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
       doc=DOCS + "/actions/workflow-jobs#list-jobs-for-a-workflow-run")
def h_run_jobs(h, req):
    st = h.server.state
    repo = ("%s/%s" % (req.params["owner"], req.params["repo"])).lower()
    run_id = int(req.params["run_id"])
    jobs = [j for j in st.jobs.values() if j.run_id == run_id and j.repo.lower() == repo]
    if not jobs:
        raise HttpError(404, "Not Found")
    page, link = paginate(req, jobs)
    return Resp(200, {"total_count": len(jobs), "jobs": [job_obj(j, req.base, req.html) for j in page]},
                {"Link": link} if link else {})


# the run conclusions GitHub's status filter also accepts (filtered on the conclusion)
RUN_CONCLUSIONS = ("success", "failure", "cancelled", "neutral", "skipped", "timed_out", "action_required", "stale")


@route("GET", "/repos/{owner}/{repo}/actions/runs",
       doc=DOCS + "/actions/workflow-runs#list-workflow-runs-for-a-repository")
def h_repo_runs(h, req):
    """The repository's runs (each the jobs that share a run id), newest
    first; ?status= filters on the run's status or, for a conclusion value,
    on its conclusion. A repository with no jobs has no runs: 200, empty."""
    st = h.server.state
    repo = ("%s/%s" % (req.params["owner"], req.params["repo"])).lower()
    runs = {}
    for j in st.jobs.values():
        if j.repo.lower() == repo:
            runs.setdefault(j.run_id, []).append(j)
    want = req.q("status")
    rows = []
    for run_id, jobs in runs.items():
        status, conclusion = run_state(jobs)
        # a status this run cannot have (waiting, requested, anything else) matches nothing
        if want and want != (conclusion if want in RUN_CONCLUSIONS else status):
            continue
        rows.append((min(j.created_at for j in jobs), run_id, jobs))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    page, link = paginate(req, rows)
    return Resp(200, {"total_count": len(rows),
                      "workflow_runs": [run_obj(jobs[0].repo, run_id, jobs, req.base, req.html)
                                        for _, run_id, jobs in page]},
                {"Link": link} if link else {})


def c_job_obj(j):
    return {"id": j.id, "run_id": j.run_id, "repo": j.repo, "labels": j.labels, "name": j.name,
            "workflow": j.workflow, "event": j.event, "status": j.status, "conclusion": j.conclusion,
            "runner_name": j.runner_name, "runner_id": j.runner_id, "killed": j.killed,
            "runner_labels": j.runner_labels, "duration": j.duration, "created_at": j.created_at,
            "started_at": j.started_at, "completed_at": j.completed_at}


@route("POST", "/_ghsim/jobs", kind="control")
def c_new_job(h, req):
    st = h.server.state
    b = req.body
    repo = b.get("repo")
    need(isinstance(repo, str) and re.match(r"^[^/\s]+/[^/\s]+$", repo or ""), 400, "repo must be OWNER/REPO")
    labels = str_list(b.get("labels", ["self-hosted"]), "labels")
    dur = b.get("duration", 1)
    need(isinstance(dur, (int, float)) and not isinstance(dur, bool) and 0 <= dur <= 86400, 400,
         "duration must be a number of seconds")
    for k in ("workflow", "event", "name", "job", "head_branch", "head_sha", "run"):
        need(b.get(k) is None or isinstance(b.get(k), str), 400, "%s must be a string" % k)
    need(b.get("event_payload") is None or isinstance(b["event_payload"], dict), 400, "event_payload must be an object")
    name = b.get("name") or "build"
    spec = {"labels": labels, "duration": float(dur), "workflow": b.get("workflow") or "ci",
            "event": b.get("event") or "push", "name": name, "job": b.get("job") or name,
            "head_branch": b.get("head_branch") or "main", "head_sha": b.get("head_sha") or secrets.token_hex(20),
            "run": b.get("run") or "", "event_payload": b.get("event_payload"), "run_id": b.get("run_id")}
    j = st.new_job(repo, spec)
    return Resp(200, {"id": j.id, "run_id": j.run_id, "status": j.status})


@route("GET", "/_ghsim/jobs", kind="control")
def c_jobs(h, req):
    return Resp(200, [c_job_obj(j) for j in h.server.state.jobs.values()])


@route("GET", "/_ghsim/jobs/{job_id}", kind="control")
def c_job(h, req):
    j = h.server.state.jobs.get(int(req.params["job_id"]))
    need(j is not None, 404, "no such job")
    return Resp(200, c_job_obj(j))


@route("POST", "/_ghsim/jobs/{job_id}/cancel", kind="control")
def c_job_cancel(h, req):
    """Cancel a job as a user does in the Actions UI: a queued job completes at
    once (conclusion cancelled, a completed webhook); a running one too, and its
    runner hears "cancelled" at its next heartbeat."""
    st = h.server.state
    with st.lock:
        j = st.jobs.get(int(req.params["job_id"]))
        need(j is not None, 404, "no such job")
        if j.status != "completed":
            st.finish_job(j, "cancelled")
            log("job %d cancelled" % j.id)
            st.dispatch()
        return Resp(200, c_job_obj(j))
