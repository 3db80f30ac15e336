#!/usr/bin/env bash
# Install zerotrust-admin with every backend SDK into .venv, then walk through the
# main job on the embedded defaults: init, put/get a password and a binary
# Kerberos keytab, list, history, audit verify. The walk-through uses a fresh
# throw-away ZEROTRUST_HOME (printed at the end) so it never touches your real vault.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
export PATH="$PWD/.venv/bin:$PATH"

demo=$(mktemp -d /tmp/zerotrust-demo.XXXXXX)
export ZEROTRUST_HOME="$demo/home" XDG_CONFIG_HOME="$demo/config"
unset ZEROTRUST_CONFIG ZEROTRUST_ENCRYPTION_KEY ZEROTRUST_PASSPHRASE
run() { printf '\n$ %s\n' "$*"; eval "$@"; }

run zerotrust-admin --version
run zerotrust-admin init
run "printf 's3cr3t' | zerotrust-admin vault put db/password"
run zerotrust-admin vault get db/password; echo
# A real keytab (MIT format 0x0502, one aes256 entry with a random key), binary.
python3 - "$demo/http.keytab" <<'PY'
import os, struct, sys, time
def counted(b): return struct.pack(">H", len(b)) + b
principal = counted(b"EXAMPLE.COM") + counted(b"HTTP") + counted(b"broker.example.com")
entry = struct.pack(">H", 2) + principal + struct.pack(">IIB", 1, int(time.time()), 3) + struct.pack(">H", 18) + counted(os.urandom(32))
open(sys.argv[1], "wb").write(b"\x05\x02" + struct.pack(">i", len(entry)) + entry)
PY
run zerotrust-admin vault put krb/http.keytab --value-file "$demo/http.keytab" --meta principal=HTTP/broker.example.com
run zerotrust-admin vault get krb/http.keytab --output-file "$demo/http.keytab.out"
run cmp "$demo/http.keytab" "$demo/http.keytab.out" "&&" echo "keytab round-trips byte for byte"
run "printf 'n3w-s3cr3t' | zerotrust-admin vault put db/password"
run zerotrust-admin vault list
run zerotrust-admin vault history db/password
run zerotrust-admin audit tail -n 5
run zerotrust-admin audit verify
printf '\nDone. The demo home is %s (delete it when finished).\n' "$ZEROTRUST_HOME"
