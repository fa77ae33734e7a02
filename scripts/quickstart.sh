#!/usr/bin/env bash
# kiln quickstart on a fresh Debian 12 machine (as root or with sudo):
#   1. installs what kiln needs (Node.js, bubblewrap, uidmap, a local registry, skopeo),
#   2. npm ci && npm run build,
#   3. starts a local registry on 127.0.0.1:5000 holding a busybox image made from
#      Debian's busybox-static (nothing is pulled from a public registry),
#   4. builds examples/hello with kiln, pushes it to that registry and runs it.
# Re-running is safe. KILN_QUICKSTART_PORT changes the registry port.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
PORT="${KILN_QUICKSTART_PORT:-5000}"
REG="127.0.0.1:${PORT}"

echo "==> installing Debian packages"
PKGS=(bubblewrap busybox-static ca-certificates docker-registry runc skopeo uidmap umoci)
# Node.js >= 20 is needed; Debian's own nodejs is used only when no node is installed.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PKGS[@]}" >/dev/null

echo "==> building kiln"
npm ci --no-audit --no-fund
npm run build

echo "==> starting a local registry on ${REG}"
STATE="${XDG_STATE_HOME:-$HOME/.local/state}/kiln-quickstart"
mkdir -p "$STATE"
if ! node -e "fetch('http://${REG}/v2/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $STATE/registry
http:
  addr: ${REG}
EOF
  nohup /usr/bin/docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 50); do
    node -e "fetch('http://${REG}/v2/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break
    sleep 0.2
  done
fi

echo "==> pushing a busybox base image (from busybox-static) to ${REG}"
LAYOUT=$(node --input-type=module -e "import { ensureBusyboxLayout } from './dist/scripts/fixtures/busybox.js'; console.log(await ensureBusyboxLayout());")
skopeo --insecure-policy copy --quiet --dest-tls-verify=false "oci:${LAYOUT}:latest" "docker://${REG}/busybox:latest"

echo "==> kiln build examples/hello"
node dist/src/cli/kiln.js build --progress plain \
  --build-arg "BASE=${REG}/busybox:latest" -t "${REG}/hello:latest" --push examples/hello

echo "==> the result, read back with skopeo and unpacked with kiln"
skopeo inspect --tls-verify=false "docker://${REG}/hello:latest" | head -20
OUT=$(mktemp -d)
node dist/src/cli/kiln.js build --progress quiet --build-arg "BASE=${REG}/busybox:latest" -o "type=local,dest=${OUT}" examples/hello
cat "${OUT}/greeting.txt"
echo "done: ${REG}/hello:latest (registry pid $(cat "$STATE/registry.pid" 2>/dev/null || echo '?'), stop it with: kill \$(cat $STATE/registry.pid))"
