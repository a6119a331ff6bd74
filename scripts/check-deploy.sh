#!/usr/bin/env bash
# Checks deploy/: the systemd unit (systemd-analyze verify, and its exposure score), the
# Prometheus alert rules (promtool check rules + their unit tests), the Grafana dashboard's
# queries (parsed by promtool as recording rules), the compose file (YAML, the services and
# settings the runbook relies on) and the Containerfile's essentials. Containers themselves
# are not built here (no container runtime in CI); README says how to build them.
#
# Needs: systemd (systemd-analyze), prometheus (promtool), python3-yaml. scripts/test.sh
# installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
DEPLOY=$(pwd)/deploy
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check-deploy: $*" >&2; exit 1; }

# --- systemd unit -------------------------------------------------------------------------
# verify wants ExecStart= to exist: check a copy pointing at an executable that does. Any
# warning (an unknown or misplaced key is only a warning to systemd) fails the check.
sed 's#^ExecStart=/usr/local/bin/otp-backend #ExecStart=/bin/true #' \
  "$DEPLOY/otp-backend.service" > "$tmp/otp-backend.service"
grep -q '^ExecStart=/bin/true serve$' "$tmp/otp-backend.service" || fail "ExecStart line not as expected"
out=$(systemd-analyze verify "$tmp/otp-backend.service" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warned: $out"
for key in 'User=otp-backend' 'ProtectSystem=strict' 'ReadWritePaths=/var/lib/otp-backend' \
    'NoNewPrivileges=yes' 'PrivateTmp=yes' 'CapabilityBoundingSet=' 'MemoryMax=' \
    'Restart=on-failure' 'KillSignal=SIGTERM' 'TimeoutStopSec='; do
  grep -q "^$key" "$DEPLOY/otp-backend.service" || fail "otp-backend.service lacks $key"
done
# Exposure 0..10 (x10 here): "OK" is 2.0 or less.
systemd-analyze security --offline=yes --threshold=20 "$tmp/otp-backend.service" >"$tmp/security.txt" 2>&1 \
  || { tail -3 "$tmp/security.txt" >&2; fail "otp-backend.service exposure above 2.0"; }
echo "systemd unit: ok ($(grep -o 'exposure level for [^:]*: [0-9.]*' "$tmp/security.txt"))"

# --- Prometheus rules ---------------------------------------------------------------------
promtool check rules "$DEPLOY/prometheus/otp-alerts.yml"
(cd "$DEPLOY/prometheus" && promtool test rules otp-alerts.test.yml)

# --- Grafana dashboard: JSON, and every query is valid PromQL -----------------------------
"$PY" - "$DEPLOY/grafana/otp-backend.json" "$tmp/dashboard-rules.yml" <<'PY'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
exprs = []
for p in dash["panels"]:
    assert p.get("title") and p.get("targets"), f"panel without title or queries: {p.get('id')}"
    for t in p["targets"]:
        exprs.append(t["expr"].replace("$instance", ".*"))
ids = [p["id"] for p in dash["panels"]]
assert len(ids) == len(set(ids)), "duplicate panel ids"
rules = [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)]
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, open(sys.argv[2], "w"))
print(f"dashboard: {len(dash['panels'])} panels, {len(exprs)} queries")
PY
promtool check rules "$tmp/dashboard-rules.yml" >/dev/null || promtool check rules "$tmp/dashboard-rules.yml"

# --- compose file and Containerfile ----------------------------------------------------------
"$PY" - "$DEPLOY/compose.yaml" "$DEPLOY/Containerfile" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
svc = c["services"]
assert svc["db"]["image"].startswith("docker.io/library/postgres:"), "PostgreSQL service"
otp = [n for n, s in svc.items() if s.get("build", {}).get("dockerfile") == "deploy/Containerfile"]
assert len(otp) >= 2, f"at least two otp-backend instances, got {otp}"
for n in otp:
    s = svc[n]
    assert s["depends_on"]["db"]["condition"] == "service_healthy", n
    assert s["environment"]["OTP_MASTER_KEY_FILE"].startswith("/run/secrets/"), n
    assert "master_key" in s["secrets"], n
    assert any(v.endswith(":/var/lib/otp-backend") for v in s["volumes"]), n
    assert s["cap_drop"] == ["ALL"] and s["read_only"] is True, n
for name, sec in c["secrets"].items():
    assert sec["file"].startswith("./secrets/"), name
lines = [l.strip() for l in open(sys.argv[2]) if l.strip() and not l.lstrip().startswith("#")]
final = lines[max(i for i, l in enumerate(lines) if l.startswith("FROM "))
              :]
assert any(l.startswith("FROM docker.io/library/debian:") and "slim" in l for l in final), "slim Debian base"
users = [l.split()[1] for l in final if l.startswith("USER ")]
assert users and users[-1].split(":")[0] not in ("0", "root"), "runs as non-root"
assert any(l.startswith("VOLUME") and "/var/lib/otp-backend" in l for l in final), "data volume"
assert any(l.startswith("HEALTHCHECK") for l in final) and any("healthcheck" in l for l in final), "healthcheck"
print(f"compose: services {sorted(svc)}; Containerfile: non-root ({users[-1]}), volume, healthcheck")
PY
echo "deploy/: all checks passed"
