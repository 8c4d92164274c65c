#!/bin/sh
# QEMU lives on the stick's read-only sub0-sys partition (mounted at /opt/sub0/hv by /init) with
# the libraries it links beside it; this runs it with those and its own firmware directory.
HV=/opt/sub0/hv
if [ ! -x "$HV/bin/qemu-system-x86_64" ]; then
  echo "qemu-system-x86_64: the hypervisor partition (sub0-sys) is not mounted at $HV" >&2
  exit 127
fi
LD_LIBRARY_PATH="$HV/lib" exec "$HV/bin/qemu-system-x86_64" -L "$HV/share/qemu" "$@"
