#!/usr/bin/env bash
# Install everything the test suite needs (Debian packages, a virtualenv with the
# project and its test extras) and run the whole suite. Extra arguments go to pytest.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(redis-server redis-tools softhsm2 poppler-utils gcc libc6-dev mandoc groff-base man-db krb5-kdc krb5-admin-server krb5-user postgresql iproute2 util-linux)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${missing[*]}"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

scripts/venv.sh test
exec .venv/bin/python -m pytest "$@"
