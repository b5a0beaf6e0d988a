"""Checks on rendered kustomize output that no generic linter knows about.

Usage: check_rendered.py RENDERED_DIR SKIPS_FILE CHECKOV_JSON

Reads every <overlay>.yaml in RENDERED_DIR and asserts the deployment's own
promises (Pod Security "restricted", role split, HPA ownership of replicas, PDBs,
NetworkPolicies, digests, the shutdown, memory and connection budgets, the
app.kubernetes.io labels on every object, secrets as files); then fails on any
failed check in the checkov JSON report, and on any checkov skip without a reason.
Prints one line per problem; exits 1 if there was any.
"""

import fnmatch
import json
import pathlib
import sys

import yaml

problems = []


def problem(msg):
    problems.append(msg)
    print(f"  FAIL {msg}")


def load(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def pod_spec(obj):
    return obj.get("spec", {}).get("template", {}).get("spec", {})


def env_value(container, configmaps, name):
    for e in container.get("env", []):
        if e["name"] == name and "value" in e:
            return e["value"]
    for src in container.get("envFrom", []):
        ref = src.get("configMapRef", {}).get("name")
        if ref in configmaps and name in configmaps[ref]:
            return configmaps[ref][name]
    return None


def check_restricted(where, spec):
    """The Pod Security Standards "restricted" profile, as the namespaces enforce it."""
    pod = spec.get("securityContext", {})
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        problem(f"{where}: uses host namespaces")
    for v in spec.get("volumes", []):
        if not ({"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected",
                 "downwardAPI", "ephemeral", "csi"} & v.keys()):
            problem(f"{where}: volume {v['name']} has a type restricted forbids")
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        sc = c.get("securityContext", {})
        what = f"{where}/{c['name']}"
        if not (sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True):
            problem(f"{what}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod.get("runAsUser")) == 0:
            problem(f"{what}: runs as UID 0")
        seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problem(f"{what}: seccompProfile is {seccomp}")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(f"{what}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problem(f"{what}: privileged")
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problem(f"{what}: capabilities must drop ALL and add none")
        # Not required by "restricted", but promised by this deployment.
        if sc.get("readOnlyRootFilesystem") is not True:
            problem(f"{what}: root filesystem is writable")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problem(f"{what}: uses a hostPort")


MIB = 1 << 20
UNITS = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "K": 10**3, "M": 10**6, "G": 10**9}


def quantity(q):
    for suffix, factor in UNITS.items():
        if str(q).endswith(suffix):
            return int(float(str(q)[: -len(suffix)]) * factor)
    return int(q)


def check_memory_budget(where, c, configmaps):
    """Estimates: ~128 MiB for the process, 4 bytes per pixel for each decode a worker
    thread holds (MAX_PIXELS), and every upload in flight held whole
    (MAX_CONCURRENT_UPLOADS x MAX_UPLOAD_BYTES; scripts/bench measures 1.5-2.2x an
    upload's size at the peak, allocator included, which the 128 MiB and the limits'
    headroom cover at these settings)."""
    def setting(name, default):
        return int(env_value(c, configmaps, name) or default)

    role = (c.get("args") or ["run"])[0]
    need = 128 * MIB
    if role in ("run", "worker"):
        need += setting("WORKER_THREADS", 4) * setting("MAX_PIXELS", 50_000_000) * 4
    if role in ("run", "api"):
        need += setting("MAX_CONCURRENT_UPLOADS", 32) * setting("MAX_UPLOAD_BYTES", 26_214_400)
    limit = quantity(c["resources"]["limits"]["memory"])
    if limit < need:
        problem(f"{where}: memory limit {limit // MIB} MiB < estimated need {need // MIB} MiB")


# src/db/mod.rs BLOB_POOL_SIZE: the API's connections for uploads of 1 MiB and more.
BLOB_POOL_SIZE = 4


def check_connection_budget(name, by_kind, configmaps):
    """Every app pod holds DB_POOL_SIZE + 1 (LISTEN) connections, and a pod serving the API
    (`api`, `run`) up to BLOB_POOL_SIZE more for large uploads; at the HPA maxima (and during
    a rollout's surge, ignored here) they must fit in max_connections minus the 3 reserved for
    superusers."""
    max_connections = 100
    for sts in by_kind.get("StatefulSet", {}).values():
        args = pod_spec(sts)["containers"][0].get("args", [])
        for a in args:
            if a.startswith("max_connections="):
                max_connections = int(a.split("=", 1)[1])
    for cluster in by_kind.get("Cluster", {}).values():
        params = cluster["spec"].get("postgresql", {}).get("parameters", {})
        max_connections = int(params.get("max_connections", max_connections))
    hpa_max = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"]
               for h in by_kind.get("HorizontalPodAutoscaler", {}).values()}
    total = 0
    for dname, d in by_kind.get("Deployment", {}).items():
        c = pod_spec(d)["containers"][0]
        pool = int(env_value(c, configmaps, "DB_POOL_SIZE") or 16)
        if (c.get("args") or ["run"])[0] in ("run", "api"):
            pool += BLOB_POOL_SIZE
        total += hpa_max.get(dname, d["spec"].get("replicas", 1)) * (pool + 1)
    if total > max_connections - 3:
        problem(f"{name}: app pods may open {total} connections; max_connections is {max_connections}")


REQUIRED_LABELS = {"app.kubernetes.io/part-of": "image-processor",
                   "app.kubernetes.io/managed-by": "kustomize",
                   "app.kubernetes.io/name": None}


def check_labels(where, obj):
    """The recommended labels on every object, so `kubectl get all,secret,pdb,hpa,netpol
    -l app.kubernetes.io/part-of=image-processor` finds the whole deployment."""
    labels = obj.get("metadata", {}).get("labels") or {}
    for key, value in REQUIRED_LABELS.items():
        if key not in labels or (value is not None and labels[key] != value):
            problem(f"{where}: label {key}" + (f"={value}" if value else "") + " missing")


def check_secrets_are_files(where, spec):
    """Secrets reach the app as mounted files (*_FILE), never as environment variables."""
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        for e in c.get("env", []):
            if "secretKeyRef" in e.get("valueFrom", {}):
                problem(f"{where}/{c['name']}: env {e['name']} comes from a Secret; mount it and use {e['name']}_FILE")
        for src in c.get("envFrom", []):
            if "secretRef" in src:
                problem(f"{where}/{c['name']}: envFrom a Secret; mount it as files instead")


def check_overlay(name, docs):
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        check_labels(f"{name}: {d['kind']}/{d['metadata']['name']}", d)
    configmaps = {n: d.get("data", {}) for n, d in by_kind.get("ConfigMap", {}).items()}
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}

    for wname, w in workloads.items():
        spec = pod_spec(w)
        where = f"{name}: {w['kind']}/{wname}"
        check_restricted(where, spec)
        if w["kind"] == "Deployment":
            check_secrets_are_files(where, spec)
        if spec.get("automountServiceAccountToken") is not False:
            problem(f"{where}: service account token is mounted")
        if spec.get("serviceAccountName") in (None, "default"):
            problem(f"{where}: runs as the default service account")
        for c in spec.get("containers", []):
            # The shutdown budget: preStop delay + job drain must fit in the grace period.
            grace = spec.get("terminationGracePeriodSeconds", 30)
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
            drain = env_value(c, configmaps, "SHUTDOWN_GRACE_SECS")
            if drain is not None and not grace > pre_stop + int(drain):
                problem(f"{where}: terminationGracePeriodSeconds {grace} <= preStop {pre_stop}"
                        f" + SHUTDOWN_GRACE_SECS {drain}")
            if "memory" not in c.get("resources", {}).get("limits", {}):
                problem(f"{where}/{c['name']}: no memory limit")
            elif c.get("name") == "image-processor":
                check_memory_budget(where, c, configmaps)
            if w["kind"] == "Deployment" and "/healthz" not in json.dumps(c.get("livenessProbe", {})):
                problem(f"{where}/{c['name']}: liveness must be /healthz (no database)")

    if name.startswith("prod"):
        deployments = by_kind.get("Deployment", {})
        api = deployments.get("image-processor-api")
        worker = deployments.get("image-processor-worker")
        if not api or not worker:
            problem(f"{name}: expected Deployments image-processor-api and image-processor-worker")
            return
        if pod_spec(api)["containers"][0].get("args") != ["api"]:
            problem(f"{name}: image-processor-api does not run `api`")
        if pod_spec(worker)["containers"][0].get("args") != ["worker"]:
            problem(f"{name}: image-processor-worker does not run `worker`")
        if api["spec"].get("replicas", 1) < 2:
            problem(f"{name}: image-processor-api needs at least 2 replicas")
        if "replicas" in worker["spec"]:
            problem(f"{name}: image-processor-worker sets spec.replicas, which fights the HPA")
        hpas = by_kind.get("HorizontalPodAutoscaler", {}).values()
        if not any(h["spec"]["scaleTargetRef"]["name"] == "image-processor-worker"
                   and h["spec"].get("minReplicas", 1) >= 3 for h in hpas):
            problem(f"{name}: no HPA with minReplicas >= 3 for image-processor-worker")
        pdb_components = {p["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component")
                          for p in by_kind.get("PodDisruptionBudget", {}).values()}
        if not {"api", "worker"} <= pdb_components:
            problem(f"{name}: PodDisruptionBudgets must cover api and worker")
        check_connection_budget(name, by_kind, configmaps)
        policies = by_kind.get("NetworkPolicy", {}).values()
        if not any(p["spec"].get("podSelector") == {} and
                   set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"} for p in policies):
            problem(f"{name}: no default-deny NetworkPolicy")
        for wname, w in workloads.items():
            spec = pod_spec(w)
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                if "@sha256:" not in c["image"]:
                    problem(f"{name}: {wname}/{c['name']} image {c['image']} is not pinned by digest")


def check_checkov(report_path, skips, rendered):
    """Every failed check fails; checks skipped through checkov itself (annotations,
    Dockerfile comments) are listed with their reason, and a skip without one fails."""
    reports = json.loads(pathlib.Path(report_path).read_text())
    if isinstance(reports, dict):
        reports = [reports]
    for report in reports:
        summary = report.get("summary", {})
        if summary.get("parsing_errors"):
            problem(f"checkov could not parse {summary['parsing_errors']} file(s)")
        results = report.get("results", {})
        for failed in results.get("failed_checks", []):
            target = f"{pathlib.Path(failed['file_path']).name}:{failed['resource'].replace(f'{rendered}/', '')}"
            problem(f"checkov {failed['check_id']} {target}: {failed['check_name']}")
        for skipped in results.get("skipped_checks", []):
            target = f"{pathlib.Path(skipped['file_path']).name}:{skipped['resource'].replace(f'{rendered}/', '')}"
            reason = (skipped.get("check_result", {}).get("suppress_comment") or "").strip()
            if not reason or reason == "No comment provided":
                problem(f"checkov skip {skipped['check_id']} {target} has no reason")
            else:
                print(f"  skip {skipped['check_id']} {target}: {reason}")
    for tool, check, where, _ in skips:
        if tool == "checkov":
            problem(f"skips.txt: `{tool} {check} {where}`: skip checkov findings with checkov annotations")


def read_skips(path):
    skips = []
    for n, line in enumerate(pathlib.Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(None, 3)
        if len(fields) < 4:
            problem(f"skips.txt:{n}: want TOOL CHECK WHERE REASON")
            continue
        skips.append(tuple(fields))
    return skips


def main():
    rendered, skips_file, checkov_json = sys.argv[1:4]
    for path in sorted(pathlib.Path(rendered).glob("*.yaml")):
        check_overlay(path.stem, load(path))
    check_checkov(checkov_json, read_skips(skips_file), rendered)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
