#!/bin/sh
# Build Bard's image where no image registry is reachable: the two base images the Dockerfile starts FROM are
# made here from Debian's own packages (debootstrap, then apt), and the build is pointed at them.
#
#   sudo deploy/local-base-images.sh                    # server-mode image, tagged bard:local
#   sudo BARD_EMBEDDED=1 TAG=bard:embedded deploy/local-base-images.sh
#
# Needs a running Docker engine, debootstrap (Debian: apt-get install docker.io debootstrap), and the Debian
# mirror, PyPI and the npm registry reachable from the build (--network host). The bases are Debian 12's
# Python 3.11 and Node.js 18, which Bard and the dashboard's build support; the published images would be
# Python 3.12 and Node.js 20. Settings (environment):
#   MIRROR        the Debian mirror (default http://deb.debian.org/debian)
#   EXTRA_CA_DIR  a directory of *.crt files the bases should trust too (a TLS-intercepting proxy's CA)
#   BARD_EMBEDDED 1 for the image that can also run `bard up` (chDB), 0 (default) for server mode
#   TAG           the image's tag (default bard:local)
set -eu
cd "$(dirname "$0")/.."
MIRROR=${MIRROR:-http://deb.debian.org/debian}
EMBEDDED=${BARD_EMBEDDED:-0}
TAG=${TAG:-bard:local}
PYTHON_BASE=bard-local/python:3.11-bookworm
NODE_BASE=bard-local/node:18-bookworm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! docker image inspect bard-local/debian:bookworm >/dev/null 2>&1; then
  echo "debootstrap: a minimal Debian 12 tree from $MIRROR" >&2
  debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" >/dev/null
  tar -C "$work/rootfs" -c . | docker import - bard-local/debian:bookworm
  rm -rf "$work/rootfs"
fi

mkdir -p "$work/certs"
if [ -n "${EXTRA_CA_DIR:-}" ]; then cp "$EXTRA_CA_DIR"/*.crt "$work/certs/"; fi
base() {  # base <tag> <Debian packages...>
  tag=$1; shift
  cat > "$work/Dockerfile" <<EOF
FROM bard-local/debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN printf 'deb $MIRROR bookworm main\ndeb $MIRROR bookworm-updates main\n' > /etc/apt/sources.list \\
 && apt-get update && apt-get install --yes --no-install-recommends ca-certificates $* \\
 && rm -rf /var/lib/apt/lists/*
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates \\
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
EOF
  docker build --network host -q -t "$tag" "$work" >/dev/null
}
# Debian marks its Python as externally managed (PEP 668); the Dockerfile installs into a virtualenv and
# builds wheels, as on the python image, which has no such marker: the base drops it.
base "$PYTHON_BASE" python3 python3-venv python3-pip python-is-python3
base "$NODE_BASE" nodejs npm

# The classic builder takes FROM images that exist locally without asking a registry.
DOCKER_BUILDKIT=0 docker build --network host \
  --build-arg PYTHON_IMAGE="$PYTHON_BASE" --build-arg NODE_IMAGE="$NODE_BASE" --build-arg BARD_EMBEDDED="$EMBEDDED" \
  -f deploy/Dockerfile -t "$TAG" .
echo "built $TAG on $PYTHON_BASE and $NODE_BASE" >&2
