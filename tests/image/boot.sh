#!/usr/bin/env bash
# The image boot test (tests/it/image.rs runs it): a Debian 12 root
# filesystem from mmdebstrap (cached), provisioned by
# packer/scripts/provision.sh under chroot exactly as Packer and Vagrant run
# it (twice: it must be idempotent), made into a disk image and booted under
# QEMU (TCG) with the HTTP, statsd and syslog ports forwarded to loopback.
# Then a statsd counter and a logger(1) syslog line go in, both are read back
# over HTTP, and the machine is powered off over ACPI.
#
# Environment: BIN (the instantops binary), CACHE (where the root filesystem
# is kept between runs), QEMU_ROOT (Debian's qemu-system-x86 unpacked),
# HTTP_PORT, STATSD_PORT, SYSLOG_PORT (free host ports).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
: "${BIN:?}" "${CACHE:?}" "${QEMU_ROOT:?}" "${HTTP_PORT:?}" "${STATSD_PORT:?}" "${SYSLOG_PORT:?}"
say() { echo "boot: $* ($(date +%T))"; }
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

# 1. The root filesystem, built once per package set.
include=linux-image-amd64,systemd-sysv,initramfs-tools,udev,e2fsprogs,bsdutils,dbus
key=$(echo "bookworm $include" | sha256sum | cut -c1-12)
base="$CACHE/rootfs-$key"
for old in "$CACHE"/rootfs-*; do
  if [ -d "$old" ] && [ "$old" != "$base" ]; then $sudo rm -rf "$old"; fi   # an older package set
done
if [ ! -f "$base/.complete" ]; then
  say "mmdebstrap bookworm into $base (cached for later runs)"
  $sudo rm -rf "$base" "$base.tmp"
  mkdir -p "$CACHE"
  $sudo mmdebstrap --quiet --variant=apt --include="$include" bookworm "$base.tmp" http://deb.debian.org/debian
  # The test rig's part, not the provisioner's: DHCP on QEMU's user network.
  printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' | $sudo tee "$base.tmp/etc/systemd/network/80-dhcp.network" >/dev/null
  $sudo systemctl --root="$base.tmp" enable systemd-networkd.service >/dev/null 2>&1
  echo instantops | $sudo tee "$base.tmp/etc/hostname" >/dev/null
  $sudo mv "$base.tmp" "$base"
  $sudo touch "$base/.complete"
fi

work=$(mktemp -d)
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "boot: kept $work"; else $sudo rm -rf "$work"; fi
}
trap cleanup EXIT

# 2. Provision a copy, under chroot, with the freshly built binary.
say "copying the root filesystem"
$sudo cp -a "$base" "$work/root"
stage="$work/root/tmp/instantops"
$sudo install -d "$stage"
$sudo objcopy --strip-debug "$BIN" "$stage/instantops"
$sudo cp "$repo/config/appliance.toml" "$stage/appliance.toml"
$sudo cp "$repo/packer/instantops.service" "$repo/packer/instantops-data.service" "$repo/packer/scripts/prepare-data.sh" "$stage/"
$sudo cp "$repo/packer/scripts/provision.sh" "$work/root/tmp/provision.sh"
say "provision.sh under chroot"
$sudo chroot "$work/root" bash /tmp/provision.sh /tmp/instantops
before=$($sudo find "$work/root/etc" "$work/root/usr/local" -type f -newer "$work/root/tmp/provision.sh" -printf '%p %s\n' | sort | sha256sum)
$sudo chroot "$work/root" bash /tmp/provision.sh /tmp/instantops
after=$($sudo find "$work/root/etc" "$work/root/usr/local" -type f -newer "$work/root/tmp/provision.sh" -printf '%p %s\n' | sort | sha256sum)
[ "$before" = "$after" ] || { echo "boot: a second provision.sh changed the files" >&2; exit 1; }
$sudo test -L "$work/root/etc/systemd/system/multi-user.target.wants/instantops.service" || { echo "boot: instantops.service is not enabled" >&2; exit 1; }
$sudo rm -rf "$stage" "$work/root/tmp/provision.sh"

# 3. A disk image of it, and QEMU.
say "mkfs.ext4 -d"
$sudo mkfs.ext4 -q -F -L root -d "$work/root" "$work/image.raw" 3G
$sudo chown "$(id -u)" "$work/image.raw"
kernel=$(find "$work/root/boot" -name 'vmlinuz-*' | sort | tail -1)
initrd=$(find "$work/root/boot" -name 'initrd.img-*' | sort | tail -1)
$sudo cp "$kernel" "$work/vmlinuz"; $sudo cp "$initrd" "$work/initrd"; $sudo chown "$(id -u)" "$work/vmlinuz" "$work/initrd"
# A blank second disk: instantops-data.service formats it and mounts it at
# /var/lib/instantops before instantops starts, as with an EBS data volume.
truncate -s 2G "$work/data.raw"
qlib="$QEMU_ROOT/usr/lib/x86_64-linux-gnu:$QEMU_ROOT/lib/x86_64-linux-gnu"
say "booting under QEMU (TCG)"
booted_at=$SECONDS
LD_LIBRARY_PATH="$qlib" QEMU_MODULE_DIR="$QEMU_ROOT/usr/lib/x86_64-linux-gnu/qemu" \
  "$QEMU_ROOT/usr/bin/qemu-system-x86_64" -accel tcg -m 2048 -smp 2 -display none \
  -L "$QEMU_ROOT/usr/share/seabios" -L "$QEMU_ROOT/usr/share/qemu" \
  -kernel "$work/vmlinuz" -initrd "$work/initrd" -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
  -drive "file=$work/image.raw,format=raw,if=virtio" -drive "file=$work/data.raw,format=raw,if=virtio" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$HTTP_PORT-:8080,hostfwd=udp:127.0.0.1:$STATSD_PORT-:8125,hostfwd=udp:127.0.0.1:$SYSLOG_PORT-:514" \
  -device virtio-net-pci,netdev=n0,romfile= \
  -serial "file:$work/console.log" -monitor "unix:$work/monitor,server,nowait" -no-reboot &
qemu_pid=$!

console() {
  echo "--- console: instantops ---"; grep -a instantops "$work/console.log" 2>/dev/null || true
  echo "--- console: last 40 lines ---"; tail -n 40 "$work/console.log" 2>/dev/null || true
}
fail() { echo "boot: $*" >&2; console >&2; exit 1; }
http() { curl -s --max-time 5 "http://127.0.0.1:$HTTP_PORT$1"; }

# 4. systemd starts instantops.
deadline=$((SECONDS + 420))
until [ "$(http /healthz 2>/dev/null)" = ok ]; do
  kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited"
  if grep -aq "Failed to start.*instantops" "$work/console.log"; then fail "systemd could not start instantops"; fi
  ((SECONDS < deadline)) || fail "instantops did not answer /healthz on the forwarded port within 420 s"
  sleep 2
done
say "instantops is up $((SECONDS - booted_at)) s after power-on"
grep -aq "prepare-data: /dev/vdb mounted at /var/lib/instantops" "$work/console.log" || fail "the data disk was not mounted"
say "data disk formatted and mounted at /var/lib/instantops"
http /api/status | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert s["memory"]["limit"] == 2 << 30, s["memory"]["limit"]  # config/appliance.toml, not the embedded default
assert s["listeners"]["syslog_udp"].endswith(":514"), s["listeners"]  # port 514 as the instantops user
print("boot: status ok:", s["version"], s["listeners"]["http"])'

# 5. A statsd counter and a syslog line, to the forwarded ports.
needle="boot-$RANDOM-$RANDOM"
for _ in 1 2 3; do echo -n "boot.hits:3|c" > "/dev/udp/127.0.0.1/$STATSD_PORT"; done
logger --udp --server 127.0.0.1 --port "$SYSLOG_PORT" --rfc3164 --tag boottest "image boot test $needle"

# 6. Both back over HTTP.
deadline=$((SECONDS + 120))
until http "/render?target=stats_counts.boot.hits&from=-10min&format=json" | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d and any(v == 9 for v, _ in d[0]["datapoints"]) else 1)' 2>/dev/null; do
  ((SECONDS < deadline)) || fail "the statsd counter never reached /render"
  sleep 2
done
say "statsd counter read back: stats_counts.boot.hits = 9"
deadline=$((SECONDS + 120))
until http "/api/logs/search?q=$needle&from=-1h" | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["total"] == 1 and d["hits"][0].get("program", d["hits"][0].get("app_name")) == "boottest" else 1)' 2>/dev/null; do
  # UDP has no acknowledgement: send again until it is in (a datagram can go
  # before the guest's listener is bound); the query wants exactly one, so
  # only resend while none arrived.
  if [ "$(http "/api/logs/search?q=$needle&from=-1h" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')" = 0 ]; then
    logger --udp --server 127.0.0.1 --port "$SYSLOG_PORT" --rfc3164 --tag boottest "image boot test $needle"
  fi
  ((SECONDS < deadline)) || fail "the syslog line never reached /api/logs/search"
  sleep 2
done
say "syslog line read back"

# 7. Power off: the ACPI power button, which systemd-logind (with dbus)
# turns into an orderly shutdown; then wait for QEMU to exit. Under TCG on a
# loaded host presses were seen to go unanswered (none of them acted on in
# 180 s once; another run needed 4 presses 30 s apart), so the button is
# pressed again every 15 s until the guest's console shows a shutdown.
power_button() {
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"system_powerdown\n")' "$work/monitor"
}
console_at=$(stat -c %s "$work/console.log")
power_button
presses=1
pressed_at=$SECONDS
deadline=$((SECONDS + 300))
while kill -0 "$qemu_pid" 2>/dev/null; do
  ((SECONDS < deadline)) || fail "the machine did not power off within 300 s ($presses presses of the power button)"
  # Only what the console printed since the first press counts.
  if ((SECONDS - pressed_at >= 15)) && ! tail -c +"$((console_at + 1))" "$work/console.log" | grep -aq "Stopping\|Stopped\|Power down"; then
    power_button
    presses=$((presses + 1))
    pressed_at=$SECONDS
  fi
  sleep 1
done
((presses == 1)) || say "powered off after $presses presses of the power button"
qemu_pid=""
grep -aq "reboot: Power down" "$work/console.log" || fail "no orderly power-down on the console"
grep -aq "Stopped.*instantops.service" "$work/console.log" || fail "systemd did not stop instantops in order"
say "powered off"
