#!/usr/bin/env bash
# Build the Gradescope autograder zip from the committed tree (HEAD):
#   setup.sh, run_autograder   at the top, as Gradescope expects
#   raftkv/                    the repository (git archive of HEAD)
# Usage: contrib/gradescope/make_zip.sh [OUT.zip]   (default: raftkv-autograder.zip)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$(realpath -m "${1:-raftkv-autograder.zip}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git -C "$repo" archive --format=tar --prefix=raftkv/ HEAD | tar -x -C "$work"
cp "$here/setup.sh" "$here/run_autograder" "$work/"
chmod +x "$work/setup.sh" "$work/run_autograder"
rm -f "$out"
(cd "$work" && python3 - "$out" <<'PY'
import os, sys, zipfile
out = sys.argv[1]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for root, dirs, files in os.walk("."):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            info = zipfile.ZipInfo.from_file(path, arcname=os.path.relpath(path, "."))
            with open(path, "rb") as f:
                z.writestr(info, f.read(), zipfile.ZIP_DEFLATED)
PY
)
echo "wrote $out"
