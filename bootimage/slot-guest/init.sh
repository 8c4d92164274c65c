#!/bin/busybox sh
# /init of the test slot image (bootimage/build/slot-image.ts): a small guest that takes its
# network from the kernel command line the node gives every slot (sub0.slot, sub0.ip4, sub0.ip6,
# sub0.gw4), answers ping, serves TCP port 8080 (its slot id), and counts its boots on its disk
# (the first 16 bytes of /dev/vda), so that tests see what survives a restart.
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /www
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
modprobe -q -a virtio_mmio virtio_pci virtio_net virtio_blk 2>/dev/null
for kv in $(cat /proc/cmdline); do
  case "$kv" in
    sub0.slot=*) slot=${kv#*=} ;;
    sub0.ip4=*) ip4=${kv#*=} ;;
    sub0.ip6=*) ip6=${kv#*=} ;;
    sub0.gw4=*) gw4=${kv#*=} ;;
  esac
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
ip link set lo up
ip link set eth0 up
if [ -n "$ip4" ]; then
  ip addr add "$ip4" dev eth0
  ip route add "${gw4:-169.254.0.1}" dev eth0
  ip route add default via "${gw4:-169.254.0.1}" dev eth0
fi
if [ -n "$ip6" ]; then
  # No duplicate address detection on a point-to-point link: the address is usable at once.
  echo 0 > /proc/sys/net/ipv6/conf/eth0/accept_dad
  ip -6 addr add "$ip6" dev eth0
  ip -6 route add default via fe80::1 dev eth0
fi
if [ -b /dev/vda ]; then
  n=$(dd if=/dev/vda bs=16 count=1 2>/dev/null | tr -dc 0-9)
  n=$(( ${n:-0} + 1 ))
  printf '%016d' "$n" | dd of=/dev/vda bs=16 count=1 conv=notrunc,fsync 2>/dev/null
  echo "sub0-slot: boot $n"
fi
echo "slot $slot" > /www/index.html
# /cgi-bin/probe: the guest tries a connection on request (tests drive traffic from inside a slot
# this way, through a port the ACL lets them reach): ?proto=icmp|tcp&dst=ADDR[&port=P][&src=ADDR]
# answers "ok" or "fail"; with src, that address is added to eth0 first, with mac, eth0 takes that
# MAC for the probe (spoofing attempts).
mkdir -p /www/cgi-bin
cat > /www/cgi-bin/probe <<'CGI'
#!/bin/sh
echo "Content-Type: text/plain"
echo
for kv in $(echo "$QUERY_STRING" | tr '&' ' '); do
  case "$kv" in
    proto=*) proto=${kv#*=} ;;
    dst=*) dst=$(echo "${kv#*=}" | sed 's/%3[Aa]/:/g') ;;
    port=*) port=${kv#*=} ;;
    src=*) src=$(echo "${kv#*=}" | sed 's/%3[Aa]/:/g') ;;
    mac=*) mac=$(echo "${kv#*=}" | sed 's/%3[Aa]/:/g') ;;
  esac
done
if [ -n "$src" ]; then ip addr add "$src" dev eth0 2>/dev/null; fi
if [ -n "$mac" ]; then own=$(cat /sys/class/net/eth0/address); ip link set eth0 address "$mac"; fi
case "$proto" in
  icmp) if ping -c 1 -W 2 ${src:+-I "$src"} "$dst" >/dev/null 2>&1; then echo ok; else echo fail; fi ;;
  tcp) if echo | nc -w 2 "$dst" "$port" >/dev/null 2>&1; then echo ok; else echo fail; fi ;;
  *) echo "bad request" ;;
esac
if [ -n "$mac" ]; then ip link set eth0 address "$own"; fi
CGI
chmod +x /www/cgi-bin/probe
# The same page on the ports the lab's rules name (rpc 9944, db 5432), for ACL tests.
for port in 8080 9944 5432; do httpd -p "$port" -h /www; done
echo "sub0-slot: up $slot $ip4 $ip6"
# A shell on the second serial port: the slot operator's out-of-band console (tests type there).
[ -c /dev/ttyS1 ] && setsid sh -c 'exec sh </dev/ttyS1 >/dev/ttyS1 2>&1' &
while true; do sleep 3600; done
