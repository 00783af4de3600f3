#!/usr/bin/env bash
# Set up everything `make run` and `make test` need, idempotently:
#   1. Debian packages (debootstrap, espeak-ng, sox, fonts-noto-cjk, chromium + chromium-driver
#      for the browser tests and the PDF report, poppler-utils; podman and runc for the
#      container images, iproute2 (`ip`, the container test) — docs/containers.md) when missing
#      — needs root;
#   2. the virtualenv .venv with the project and its test extra (again only when pyproject changed);
#   3. the PBX: a system Asterisk 20+ or the cached Debian sid root (built once, ~1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(debootstrap espeak-ng sox python3-venv fonts-noto-cjk chromium chromium-driver
    poppler-utils podman runc iproute2)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -eq 0 ]; then
        echo "bootstrap: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
        echo "bootstrap: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

PY=${PYTHON:-python3}
stamp=.venv/.ivr120-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: preparing .venv"
    "$PY" -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" > "$stamp"
fi

.venv/bin/ivr-pbx ensure
