#!/usr/bin/env bash
# Offline checks of deploy/: no cluster (its node images cannot be pulled here) and no kubectl or
# kustomize binary are needed.
#
#   1. kustomization consistency: every listed resource exists and every manifest is listed (but
#      secret.example.yaml, kept out on purpose); all objects in the kustomization's namespace; Deployment selectors match their pod labels;
#      Services and PodDisruptionBudgets select an existing Deployment; every ConfigMap/Secret a
#      Deployment references exists; the rules the brief sets (replicas 2, non-root, read-only
#      root FS, no capabilities, seccomp, probes, limits, emptyDir at DATA_DIR) hold.
#      The base uses no generators or transformers besides `namespace`/`images`, so this check of
#      the plain files is what `kustomize build` would produce, minus the image tag rewrite.
#   2. kubernetes-validate --strict: schema of each object for each Kubernetes version in
#      K8S_VERSIONS (unknown fields are errors): the base, secret.example.yaml and the demo
#      database in dev-postgres/.
#   3. yamllint on all of deploy/ (k8s and compose files) with deploy/.yamllint.yaml.
#   4. checkov (security misconfigurations) on the manifests and the Dockerfiles. CHECKOV=0 skips it.
#   5. docker-compose config -q on the compose files, when docker-compose is installed.
#
# Tools are pip-installed, pinned, into a venv under
# ${K8S_VALIDATE_CACHE:-~/.cache/jwt-platform-k8s-validate} and reused on later runs.
# Exit status: 0 only if every step passed.
set -euo pipefail

K8S_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY_DIR="$(cd "$K8S_DIR/.." && pwd)"
CACHE="${K8S_VALIDATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jwt-platform-k8s-validate}"
VENV="$CACHE/venv"
# Oldest Kubernetes minor still common in managed offerings, and the newest the schemas know.
K8S_VERSIONS="${K8S_VERSIONS:-1.30.0 1.37.0}"
CHECKOV="${CHECKOV:-1}"
PKGS=(kubernetes-validate==1.37.0 yamllint==1.38.0 PyYAML)
[ "$CHECKOV" = 1 ] && PKGS+=(checkov==3.3.30)

FAILED=()
PASSED=0
step() { printf '\n== %s\n' "$*"; }
record() { if [ "$1" -eq 0 ]; then echo "-> ok"; PASSED=$((PASSED + 1)); else echo "-> FAILED"; FAILED+=("$2"); fi; }

# ---- tools ----------------------------------------------------------------------------------------
step "tools (venv $VENV)"
want="$(printf '%s\n' "${PKGS[@]}")"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$CACHE"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}"
    printf '%s\n' "$want" >"$VENV/.installed"
fi
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version), $("$VENV/bin/yamllint" --version)"

# Resource files, in kustomization order, relative to deploy/k8s.
kustomization_resources() {
    "$VENV/bin/python" - "$1" "$K8S_DIR" <<'PY'
import os, sys, yaml
d = os.path.dirname(sys.argv[1])
for r in yaml.safe_load(open(sys.argv[1])).get("resources", []):
    print(os.path.relpath(os.path.join(d, r), sys.argv[2]))
PY
}
mapfile -t RESOURCES < <(kustomization_resources "$K8S_DIR/kustomization.yaml")
mapfile -t DEV_PG < <(kustomization_resources "$K8S_DIR/dev-postgres/kustomization.yaml")
# Everything checked against schemas and by checkov.
ALL_MANIFESTS=("${RESOURCES[@]}" secret.example.yaml "${DEV_PG[@]}")
# checkov only logs a missing file; make that an error here.
for f in "${ALL_MANIFESTS[@]}"; do
    [ -f "$K8S_DIR/$f" ] || { echo "missing manifest $f"; FAILED+=("missing $f"); }
done

# ---- 1. kustomization consistency ------------------------------------------------------------------
step "kustomization consistency and policy"
set +e
(cd "$K8S_DIR" && "$VENV/bin/python" - "${RESOURCES[@]}" <<'PY'
import glob, os, sys, yaml

errors = []
def err(msg): errors.append(msg)

kust = yaml.safe_load(open("kustomization.yaml"))
ns = kust.get("namespace")
listed = sys.argv[1:]
for f in listed:
    if not os.path.isfile(f):
        err(f"kustomization lists missing file {f}")
EXAMPLES = ["secret.example.yaml"]  # deliberately not in the kustomization (see that file)
for f in sorted(glob.glob("*.yaml")):
    if f != "kustomization.yaml" and f not in listed and f not in EXAMPLES:
        err(f"{f} is not listed in kustomization.yaml resources")
for gen in ("configMapGenerator", "secretGenerator", "commonLabels", "labels", "patches",
            "patchesStrategicMerge", "replacements", "components"):
    if gen in kust:
        err(f"kustomization uses {gen}: validate.sh checks plain files and would miss its effect")

objs = []
for f in listed + EXAMPLES:
    if os.path.isfile(f):
        for d in yaml.safe_load_all(open(f)):
            if d:
                objs.append((f, d))
by_kind = {}
for f, d in objs:
    by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    if d["kind"] != "Namespace" and d["metadata"].get("namespace") != ns:
        err(f"{f}: {d['kind']}/{d['metadata']['name']} not in namespace {ns}")
if ns not in by_kind.get("Namespace", {}):
    err(f"no Namespace object {ns}")

def subset(sel, labels):
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items())

deployments = by_kind.get("Deployment", {})
for name, d in deployments.items():
    where = f"Deployment/{name}"
    spec, pod = d["spec"], d["spec"]["template"]["spec"]
    if not subset(spec["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]):
        err(f"{where}: selector does not match the pod labels")
    if spec.get("replicas") != 2:
        err(f"{where}: replicas {spec.get('replicas')} != 2")
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        err(f"{where}: pod runAsNonRoot not true")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        err(f"{where}: seccompProfile not RuntimeDefault")
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for c in pod["containers"]:
        cw = f"{where} container {c['name']}"
        sc = c.get("securityContext", {})
        if sc.get("readOnlyRootFilesystem") is not True:
            err(f"{cw}: readOnlyRootFilesystem not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            err(f"{cw}: allowPrivilegeEscalation not false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            err(f"{cw}: capabilities do not drop ALL")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            err(f"{cw}: readiness probe is not GET /readyz")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            err(f"{cw}: liveness probe is not GET /healthz")
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in res.get(kind, {}):
                    err(f"{cw}: no {kind}.{r}")
        for ref in c.get("envFrom", []):
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in ref and ref[key]["name"] not in by_kind.get(kind, {}):
                    err(f"{cw}: {kind} {ref[key]['name']} does not exist")
        # DATA_DIR (from the ConfigMap) must be a mounted emptyDir: the key cache lives there.
        data_dir = None
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                data_dir = by_kind.get("ConfigMap", {}).get(ref["configMapRef"]["name"], {}).get("data", {}).get("DATA_DIR", data_dir)
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        if not data_dir or data_dir not in mounts or "emptyDir" not in vols.get(mounts[data_dir], {}):
            err(f"{cw}: DATA_DIR {data_dir} is not an emptyDir mount")
        ports = {p["name"] for p in c.get("ports", [])}
        for svc in by_kind.get("Service", {}).values():
            if subset(svc["spec"].get("selector"), d["spec"]["template"]["metadata"]["labels"]):
                for p in svc["spec"]["ports"]:
                    if isinstance(p.get("targetPort"), str) and p["targetPort"] not in ports:
                        err(f"Service/{svc['metadata']['name']}: targetPort {p['targetPort']} not a port of {name}")

pod_labels = [d["spec"]["template"]["metadata"]["labels"] for d in deployments.values()]
for kind in ("Service", "PodDisruptionBudget"):
    for name, o in by_kind.get(kind, {}).items():
        sel = o["spec"]["selector"] if kind == "Service" else o["spec"]["selector"]["matchLabels"]
        if not any(subset(sel, l) for l in pod_labels):
            err(f"{kind}/{name}: selects no Deployment's pods")
for name in deployments:
    if not any(subset(p["spec"]["selector"]["matchLabels"], deployments[name]["spec"]["template"]["metadata"]["labels"])
               for p in by_kind.get("PodDisruptionBudget", {}).values()):
        err(f"Deployment/{name}: no PodDisruptionBudget")
    if not any(subset(s["spec"]["selector"], deployments[name]["spec"]["template"]["metadata"]["labels"])
               for s in by_kind.get("Service", {}).values()):
        err(f"Deployment/{name}: no Service")

counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
print(f"{len(objs)} objects in {len(listed)} files + {', '.join(EXAMPLES)}: {counts}")
for e in errors:
    print("  ERROR:", e)
sys.exit(1 if errors else 0)
PY
)
record $? "kustomization consistency"

# ---- 2. schemas -------------------------------------------------------------------------------------
for v in $K8S_VERSIONS; do
    step "kubernetes-validate --strict -k $v"
    (cd "$K8S_DIR" && "$VENV/bin/kubernetes-validate" --strict -k "$v" "${ALL_MANIFESTS[@]}")
    record $? "kubernetes-validate $v"
done

# ---- 3. yamllint ------------------------------------------------------------------------------------
step "yamllint deploy/"
"$VENV/bin/yamllint" --strict -c "$DEPLOY_DIR/.yamllint.yaml" "$DEPLOY_DIR" && echo "no problems"
record $? "yamllint"

# ---- 4. checkov -------------------------------------------------------------------------------------
if [ "$CHECKOV" = 1 ]; then
    # Skipped checks, each a deliberate choice:
    #   CKV_K8S_43  image by digest: the base uses a local tag for kind/minikube; overlays pin
    #               digests (see kustomization.yaml).
    #   CKV_K8S_15  imagePullPolicy Always: would defeat images loaded with `kind load`.
    #   CKV_K8S_35  secrets as files instead of env: the binaries' contract is env vars (clap env);
    #               secrecy keeps them out of logs.
    # Offline: no Prisma Cloud guideline download, no PyPI update check (only loopback traffic).
    export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE
    files=()
    for f in "${ALL_MANIFESTS[@]}"; do files+=(-f "$f"); done
    step "checkov: Kubernetes manifests"
    (cd "$K8S_DIR" && "$VENV/bin/checkov" --quiet --compact --skip-download --framework kubernetes \
        --skip-check CKV_K8S_43,CKV_K8S_15,CKV_K8S_35 "${files[@]}")
    record $? "checkov kubernetes"
    # Dockerfiles:
    #   CKV_DOCKER_2 (HEALTHCHECK) and CKV_DOCKER_3 (USER) hold; nothing skipped.
    step "checkov: Dockerfiles"
    "$VENV/bin/checkov" --quiet --compact --skip-download --framework dockerfile \
        -f "$DEPLOY_DIR/Dockerfile" -f "$DEPLOY_DIR/airgap/Dockerfile.service" \
        -f "$DEPLOY_DIR/airgap/postgres/Dockerfile"
    record $? "checkov dockerfile"
fi

# ---- 5. compose -------------------------------------------------------------------------------------
if command -v docker-compose >/dev/null; then
    step "docker-compose config -q (base, base + airgap)"
    (docker-compose -f "$DEPLOY_DIR/docker-compose.yml" config -q \
        && docker-compose -f "$DEPLOY_DIR/docker-compose.yml" -f "$DEPLOY_DIR/docker-compose.airgap.yml" config -q)
    record $? "docker-compose config"
fi

echo
if [ ${#FAILED[@]} -eq 0 ]; then
    echo "deploy validation: all checks passed"
else
    echo "deploy validation FAILED: ${FAILED[*]}"
fi
# Plain summary line (the form CI logs are read for); one count per step above.
echo "deploy-validate: $PASSED passed, ${#FAILED[@]} failed"
[ ${#FAILED[@]} -eq 0 ]
