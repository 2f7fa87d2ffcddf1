#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# The zip (made by make_zip.sh) unpacks to /autograder/source/: this script,
# run_autograder and the raftkv source tree in raftkv/. It installs the
# Debian/Ubuntu packages the harness needs (make deps) and builds the fault
# proxy, lincheck and the reference programs (make programs).
set -euo pipefail

SOURCE="${AUTOGRADER_SOURCE:-/autograder/source}"
cd "$SOURCE/raftkv"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y make python3
make programs
test -x ./proxy && test -x ./lincheck
echo "setup.sh: raftkv harness ready in $SOURCE/raftkv"
