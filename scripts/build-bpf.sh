#!/usr/bin/env bash
# Builds the ACL's tc program: overlay/acl/bpf/acl.bpf.c -> acl.bpf.o (identity maps, what nodes
# run) and acl-pairs.bpf.o (-DACL_PAIRS: the earlier map keyed by address pairs, which bench:acl
# measures beside it). Both are committed, so that a node needs no compiler. Needs clang and
# Debian's libbpf-dev (bpf_helpers.h) and linux-libc-dev. The objects are deterministic for a given
# clang; rebuild and commit them whenever the source changes.
set -euo pipefail
cd "$(dirname "$0")/.."
src=overlay/acl/bpf/acl.bpf.c
arch_inc="/usr/include/$(uname -m)-linux-gnu"
build() {
  local out=$1
  shift
  clang -O2 -g -target bpf \
    -I"$arch_inc" -Wall -Werror -Wno-unused-function "$@" \
    -c "$src" -o "$out"
  # Drop the DWARF but keep BTF (.BTF/.BTF.ext), which libbpf needs for the maps and the verifier's
  # messages: the object shrinks and stops embedding the build machine's paths.
  llvm-strip -g "$out"
  echo "built $out ($(stat -c %s "$out") bytes)"
}
build overlay/acl/bpf/acl.bpf.o
build overlay/acl/bpf/acl-pairs.bpf.o -DACL_PAIRS
