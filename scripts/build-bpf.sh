#!/usr/bin/env bash
# Builds the ACL's tc program: overlay/acl/bpf/acl.bpf.c -> acl.bpf.o (committed, so that a node
# needs no compiler). Needs clang and Debian's libbpf-dev (bpf_helpers.h) and linux-libc-dev.
# The object is deterministic for a given clang; rebuild and commit it whenever the source changes.
set -euo pipefail
cd "$(dirname "$0")/.."
src=overlay/acl/bpf/acl.bpf.c
out=overlay/acl/bpf/acl.bpf.o
arch_inc="/usr/include/$(uname -m)-linux-gnu"
clang -O2 -g -target bpf \
  -I"$arch_inc" -Wall -Werror -Wno-unused-function \
  -c "$src" -o "$out"
# Drop the DWARF but keep BTF (.BTF/.BTF.ext), which libbpf needs for the maps and the verifier's
# messages: the object shrinks and stops embedding the build machine's paths.
llvm-strip -g "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
