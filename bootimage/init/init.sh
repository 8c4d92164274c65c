#!/bin/busybox sh
# /init of the sub0 boot image (PID 1, busybox sh). Brings the machine to the point where the
# agent runs: filesystems, modules, the stick's state partition, the network, then the agent,
# restarted if it dies. Everything it says goes to the console (serial and screen) as
# "sub0: ..." lines; tests and operators read those.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mkdir -p /proc /sys /dev /run /tmp /mnt/esp /var/lib/sub0
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs run /run
mount -t tmpfs tmp /tmp
echo 0 > /proc/sys/kernel/printk_ratelimit 2>/dev/null

say() { echo "sub0: $*"; [ -c /dev/tty0 ] && echo "sub0: $*" > /dev/tty0 2>/dev/null; }
say "booting $(cat /etc/sub0/image-version 2>/dev/null) on kernel $(uname -r)"

# Drivers by their modalias, in the background: Node takes seconds to start under emulation, and
# the node program waits for /run/sub0/coldplug.done before it touches the network.
coldplug() {
  # The data plane's modules first (the agent picks its WireGuard backend by what it finds).
  modprobe -q -a wireguard tun sch_ingress cls_bpf 2>/dev/null
  # Twice: a bus driver (virtio_pci) brings devices of its own (virtio0) with their own modaliases.
  for pass in 1 2; do
    modprobe -q -b -a $(find /sys/devices -name modalias -exec cat {} + | sort -u) 2>/dev/null
  done
  grep -q vmx /proc/cpuinfo && modprobe -q kvm_intel
  grep -q svm /proc/cpuinfo && modprobe -q kvm_amd
  # A NIC without a driver is named, never a silent hang.
  for d in /sys/bus/pci/devices/*; do
    case "$(cat "$d/class")" in 0x02*) ;; *) continue ;; esac
    [ -n "$(find "$d/" -maxdepth 3 -name net -type d 2>/dev/null)" ] ||
      say "no driver for network device $(basename "$d") (PCI $(sed 's/0x//' "$d/vendor"):$(sed 's/0x//' "$d/device")): this image does not support it; see the README's list of drivers"
  done
  : > /run/sub0/coldplug.done
}
mkdir -p /run/sub0
coldplug &

# The stick: its ESP (settings) and its state partition, found by GPT partition name. In the
# background too: USB enumeration takes seconds, and the node program waits for
# /run/sub0/stick.ready before it reads its settings or its keys.
part() {
  for u in /sys/class/block/*/uevent; do
    grep -qs "^PARTNAME=$1\$" "$u" && { sed -n 's/^DEVNAME=//p' "$u"; return 0; }
  done
  return 1
}
stick() {
  # One modprobe for all: each start reads the module indexes again.
  modprobe -q -a xhci_pci ehci_pci ohci_pci uhci_hcd usb_storage uas sd_mod virtio_pci virtio_blk virtio_scsi nvme ahci \
    vfat nls_cp437 nls_ascii crc32c_intel crc32c_generic ext4 squashfs 2>/dev/null
  i=0
  while ! esp=$(part sub0-esp) || ! state=$(part sub0-state); do
    i=$((i + 1))
    [ $i = 50 ] && say "waiting for the boot stick's partitions (sub0-esp, sub0-state) to appear..."
    sleep 0.1
  done
  mount -t vfat -o ro,fmask=0133,dmask=0022 "/dev/$esp" /mnt/esp || say "cannot mount the settings partition /dev/$esp"
  # The image ships it as an ext4 with a journal (replayed here after a power cut). Only a
  # partition with no filesystem at all (wiped) is made again: an existing one that does not mount
  # holds the node's keys and is never formatted over.
  if ! mount -t ext4 "/dev/$state" /var/lib/sub0 2>/run/state.err; then
    if [ "$(dd if="/dev/$state" bs=1 skip=1080 count=2 2>/dev/null | od -An -tx1 | tr -d ' ')" = "53ef" ]; then
      say "the state partition /dev/$state does not mount ($(cat /run/state.err)): running without it; the node's keys are kept there untouched"
    else
      say "no filesystem on the state partition /dev/$state: making one (new keys follow)"
      mke2fs -q -L sub0-state "/dev/$state" && mount -t ext4 "/dev/$state" /var/lib/sub0 || say "cannot make the state partition: keys will not survive a reboot"
    fi
  fi
  # QEMU, the slots' hypervisor, read-only (bootimage/init/qemu-wrapper.sh runs it from there).
  if sys=$(part sub0-sys); then
    mount -t squashfs -o ro "/dev/$sys" /opt/sub0/hv || say "cannot mount the hypervisor partition /dev/$sys: slots cannot run"
  else
    say "no hypervisor partition (sub0-sys) on this stick: slots cannot run"
  fi
  mkdir -p /var/lib/sub0/agent
  [ -r "$SETTINGS" ] || say "no settings file ($SETTINGS): run 'sub0 image configure usb.img --network FILE'"
  : > /run/sub0/stick.ready
}
SETTINGS=/mnt/esp/sub0/network.json
stick &
ip link set lo up

# The node program brings the uplink up (static from the settings, else DHCP), prints the node's
# identity and runs the agent; restarted with a pause if it ever exits. Its output goes to the
# console and the screen.
backoff=1
while true; do
  /usr/bin/node /opt/sub0/node.js run "$SETTINGS" 2>&1 | tee /dev/tty0
  say "agent exited; restarting in ${backoff}s"
  sleep $backoff
  [ $backoff -lt 30 ] && backoff=$((backoff * 2))
done
