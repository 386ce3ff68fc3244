#!/bin/sh
# Prints the distribution packages that hold the shared libraries the given binaries load (ldd), one
# per line. Image builds run it in the builder stage and the runtime stage installs exactly that list,
# so runtime images carry the libraries and none of the -dev packages, on Debian and Ubuntu alike.
# Libraries no package owns (LibTorch's) are left out; the worker image copies those itself.
#   docker/runtime-packages.sh build/server/psd3d-server build/client/psd3d
set -eu
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
for bin in "$@"; do
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
  # usrmerge: dpkg may know the library under /lib or /usr/lib, through a symlink or not.
  for path in "$lib" "$(readlink -f "$lib")" "/usr$lib" "${lib#/usr}"; do
    if owner=$(dpkg -S "$path" 2>/dev/null); then echo "${owner%%:*}"; break; fi
  done
done | sort -u
