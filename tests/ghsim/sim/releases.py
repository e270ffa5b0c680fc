"""Runner releases: the runner package ghsim builds from runner/ for each
(os, arch) of each version, the downloads list, actions/runner's releases,
and GitHub's rule on which versions may still take jobs. A package's bytes
are the same on every start (fixed tar metadata), so its sha256 is too.
"""

import gzip
import hashlib
import io
import os
import tarfile
import time

from .common import DOCS, RUNNER_VERSION, Resp, iso, log, need, stable_id
from .routes import route, scope_routes

PACKAGES = (("linux", "x64"), ("linux", "arm64"), ("linux", "arm"), ("osx", "x64"), ("osx", "arm64"))
# runner/ next to ghsim.py, one directory above this package
RUNNER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runner")


def build_packages(version=RUNNER_VERSION):
    """One tar.gz per (os, arch) of runner version `version`, built in memory
    from runner/ with fixed metadata so the bytes (and their sha256) are the
    same on every start."""
    files = []
    for dirpath, dirnames, filenames in os.walk(RUNNER_DIR):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            with open(p, "rb") as f:
                files.append((os.path.relpath(p, RUNNER_DIR), f.read()))
    out = {}
    for osname, arch in PACKAGES:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            pkg = "RUNNER_PKG_OS=%s\nRUNNER_PKG_ARCH=%s\nRUNNER_PKG_VERSION=%s\n" % (osname, arch, version)
            entries = files + [("bin/package.env", pkg.encode())]
            dirs = sorted({os.path.dirname(n) for n, _ in entries if os.path.dirname(n)})
            for d in dirs:
                ti = tarfile.TarInfo("./" + d)
                ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1704067200
                tar.addfile(ti)
            for name, data in sorted(entries):
                ti = tarfile.TarInfo("./" + name)
                ti.size, ti.mtime = len(data), 1704067200
                ti.mode = 0o755 if name.endswith(".sh") or name.startswith("bin/Runner.") else 0o644
                tar.addfile(ti, io.BytesIO(data))
        gz = io.BytesIO()
        with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
            g.write(raw.getvalue())
        data = gz.getvalue()
        fname = "actions-runner-%s-%s-%s.tar.gz" % (osname, arch, version)
        out[fname] = (osname, arch, data, hashlib.sha256(data).hexdigest())
    return out


@scope_routes("GET", "/downloads", doc=DOCS + "/actions/self-hosted-runners#list-runner-applications-for-a-repository")
def h_downloads(h, req):
    st = h.server.state
    out = []
    latest = st.releases[0][0]
    for fname, (osname, arch, _, digest) in st.packages.items():
        if not fname.endswith("-%s.tar.gz" % latest):
            continue  # an older release's package: still downloadable, no longer listed
        out.append({"os": osname, "architecture": arch, "download_url": "%s/_ghsim/downloads/%s" % (st.runner_base(), fname),
                    "filename": fname, "sha256_checksum": digest})
    return Resp(200, out)


def version_key(v):
    """2.321.0 -> (2, 321, 0); None for anything else."""
    parts = str(v or "").lstrip("v").split(".")
    if not parts or len(parts) > 4 or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None
    return tuple(int(p) for p in parts)


def version_refusal(st, version):
    """The message GitHub gives a runner of this version, or None when it may take jobs."""
    key = version_key(version)
    msg = "Runner version v%s is deprecated and cannot receive messages." % version
    if key is None:
        return msg
    if st.min_version and key < version_key(st.min_version):
        return msg
    # the release that superseded this one: the oldest of those newer than it
    newer = [t for v, t in st.releases if version_key(v) > key]
    if newer and time.time() - min(newer) > st.max_behind_days * 86400:
        return msg
    return None


def release_obj(st, req, version, published):
    rid = stable_id("release:" + version)
    u = "%s/repos/actions/runner/releases/%d" % (req.base, rid)
    assets = [{"name": fname, "size": len(data), "browser_download_url": "%s/_ghsim/downloads/%s" % (st.runner_base(), fname),
               "content_type": "application/gzip", "state": "uploaded"}
              for fname, (_, _, data, _) in sorted(st.packages.items()) if fname.endswith("-%s.tar.gz" % version)]
    return {"url": u, "html_url": "%s/actions/runner/releases/tag/v%s" % (req.html, version), "id": rid,
            "tag_name": "v" + version, "target_commitish": "main", "name": "v" + version, "draft": False,
            "prerelease": False, "created_at": iso(published), "published_at": iso(published),
            "assets": assets, "body": "runner %s (ghsim)" % version}


@route("GET", "/repos/actions/runner/releases", doc=DOCS + "/releases/releases#list-releases")
def h_runner_releases(h, req):
    st = h.server.state
    try:
        per_page = min(max(int((req.query.get("per_page") or ["30"])[0]), 1), 100)
    except ValueError:
        per_page = 30
    return Resp(200, [release_obj(st, req, v, t) for v, t in st.releases[:per_page]])


@route("GET", "/repos/actions/runner/releases/latest", doc=DOCS + "/releases/releases#get-the-latest-release")
def h_runner_release_latest(h, req):
    st = h.server.state
    v, t = st.releases[0]
    return Resp(200, release_obj(st, req, v, t))


@route("POST", "/_ghsim/runner-releases", kind="control")
def c_runner_releases(h, req):
    """{"releases": [{"version", "published_at" (unix s) | "days_ago"}], "min_version": V|null,
    "max_behind_days": N}: each field optional; a new release's package is built at once."""
    st = h.server.state
    b = req.body if isinstance(req.body, dict) else {}
    if "releases" in b:
        rel = []
        for x in b["releases"] or []:
            need(isinstance(x, dict) and version_key(x.get("version")) is not None, 400, "bad release")
            t = x.get("published_at")
            if t is None:
                t = time.time() - float(x.get("days_ago", 0)) * 86400
            rel.append((str(x["version"]), int(t)))
        need(rel, 400, "at least one release")
        rel.sort(key=lambda r: version_key(r[0]), reverse=True)
        for v, _ in rel:
            if not any(f.endswith("-%s.tar.gz" % v) for f in st.packages):
                st.packages.update(build_packages(v))
        st.releases = rel
    if "min_version" in b:
        need(b["min_version"] is None or version_key(b["min_version"]) is not None, 400, "bad min_version")
        st.min_version = b["min_version"]
    if "max_behind_days" in b:
        st.max_behind_days = float(b["max_behind_days"])
    log("runner releases: %s, minimum %s" % (", ".join(v for v, _ in st.releases), st.min_version))
    return c_runner_releases_get(h, req)


@route("GET", "/_ghsim/runner-releases", kind="control")
def c_runner_releases_get(h, req):
    st = h.server.state
    return Resp(200, {"releases": [{"version": v, "published_at": t} for v, t in st.releases],
                      "min_version": st.min_version, "max_behind_days": st.max_behind_days,
                      "refused": st.stats.get("version_refused", 0)})


@route("GET", "/_ghsim/downloads/{filename}", kind="download")
def h_download_file(h, req):
    pkg = h.server.state.packages.get(req.params["filename"])
    if pkg is None:
        return Resp(404, "Not Found\n", ctype="text/plain")
    return Resp(200, pkg[2], {"Content-Disposition": "attachment; filename=" + req.params["filename"]},
                ctype="application/octet-stream")
