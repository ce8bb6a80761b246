#!/usr/bin/env bash
# Puts the data dir on its own disk when the machine has one: the first
# whole writable disk of at least 1 GiB with no partitions, no mount and no
# filesystem, or one labelled instantops-data (an EBS data volume, a second
# virtual disk). A blank one is formatted ext4 with the
# label instantops-data; then it is mounted at /var/lib/instantops (by label,
# in fstab, nofail) and handed to the instantops user. Without such a disk the
# data stays on the root filesystem. Safe to run again.
#
#   prepare-data.sh [--wait SECONDS]   (wait for a disk attached after boot)
set -euo pipefail
data_dir=/var/lib/instantops
label=instantops-data
wait_s=0
[ "${1:-}" = --wait ] && wait_s=${2:-60}

mounted() { findmnt -n "$data_dir" >/dev/null 2>&1; }
if mounted; then exit 0; fi

# Whole writable disks of at least 1 GiB: not a floppy, CD, loop or RAM disk.
candidate() {
  lsblk -dbpno NAME,TYPE,SIZE,RO | awk '$2 == "disk" && $3 >= 1073741824 && $4 == 0 && $1 !~ /^\/dev\/(fd|sr|loop|ram|zram)/ {print $1}' | while read -r dev; do
    [ "$(lsblk -no NAME "$dev" | wc -l)" = 1 ] || continue      # has partitions
    [ -z "$(lsblk -no MOUNTPOINT "$dev")" ] || continue         # in use
    fs=$(blkid -o value -s TYPE "$dev" 2>/dev/null || true)
    lbl=$(blkid -o value -s LABEL "$dev" 2>/dev/null || true)
    if [ -z "$fs" ] || [ "$lbl" = "$label" ]; then echo "$dev"; break; fi
  done
}

dev=""
for _ in $(seq 0 "$wait_s"); do
  dev=$(candidate)
  [ -n "$dev" ] && break
  [ "$wait_s" = 0 ] && break
  sleep 1
done
if [ -z "$dev" ]; then echo "prepare-data: no data disk; $data_dir stays on the root filesystem"; exit 0; fi

if [ -z "$(blkid -o value -s TYPE "$dev" 2>/dev/null || true)" ]; then
  echo "prepare-data: formatting $dev as ext4 ($label)"
  mkfs.ext4 -q -L "$label" "$dev"
fi
grep -q "LABEL=$label" /etc/fstab || echo "LABEL=$label $data_dir ext4 defaults,noatime,nofail,x-systemd.device-timeout=30s 0 2" >> /etc/fstab
install -d "$data_dir"
mount "$data_dir"
chown instantops:instantops "$data_dir"
chmod 0750 "$data_dir"
echo "prepare-data: $dev mounted at $data_dir"
