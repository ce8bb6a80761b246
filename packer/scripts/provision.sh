#!/usr/bin/env bash
# Turns a Debian 12 machine (or a root filesystem, under chroot) into an
# instantops box. The one provisioner of the AMI, the QEMU image, the Vagrant
# box and the image boot test. Idempotent: a second run changes nothing that
# the first set up, and keeps a config file someone has edited. Needs no
# network unless libstdc++ is missing, and then only the package mirror.
#
#   provision.sh [STAGE]
#
# STAGE (default $INSTANTOPS_STAGE, else /tmp/instantops) holds what the
# build uploaded: `instantops` (the binary), `appliance.toml` (the box's
# config, config/appliance.toml) and `instantops.service` (packer/).
set -euo pipefail

stage=${1:-${INSTANTOPS_STAGE:-/tmp/instantops}}
user=instantops
data_dir=/var/lib/instantops
config=/etc/instantops/instantops.toml
bin=/usr/local/bin/instantops

say() { echo "provision: $*"; }

[ "$(id -u)" = 0 ] || { echo "provision: run as root" >&2; exit 1; }
for f in instantops appliance.toml instantops.service prepare-data.sh instantops-data.service; do
  [ -f "$stage/$f" ] || { echo "provision: $stage/$f is missing" >&2; exit 1; }
done

# Running under chroot (the image build) or on a booted system?
booted=false
[ -d /run/systemd/system ] && booted=true

# The binary's only libraries beyond libc: libstdc++ and libgcc (RocksDB).
if ! ldconfig -p | grep -q 'libstdc++\.so\.6'; then
  say "installing libstdc++6"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libstdc++6 >/dev/null
fi

if ! getent passwd "$user" >/dev/null; then
  say "creating user $user"
  useradd --system --user-group --home-dir "$data_dir" --no-create-home --shell /usr/sbin/nologin "$user"
fi

install -d -m 0750 -o "$user" -g "$user" "$data_dir"
install -d -m 0755 /etc/instantops /usr/local/lib/instantops
install -m 0755 "$stage/instantops" "$bin.new"
mv -f "$bin.new" "$bin"
install -m 0755 "$stage/prepare-data.sh" /usr/local/lib/instantops/prepare-data.sh

# The config is the operator's once installed: a different packaged one goes
# next to it as .dist, as dpkg does with a changed conffile.
if [ ! -f "$config" ]; then
  install -m 0640 -g "$user" "$stage/appliance.toml" "$config"
elif ! cmp -s "$stage/appliance.toml" "$config"; then
  say "$config was changed here: the packaged one is $config.dist"
  install -m 0640 -g "$user" "$stage/appliance.toml" "$config.dist"
fi
"$bin" check-config "$config" >/dev/null

# Kernel settings for a box that takes statsd and syslog over UDP and many
# TCP clients: big socket receive buffers (instantops asks for them), a long
# accept queue and more open files.
cat > /etc/sysctl.d/60-instantops.conf <<'SYSCTL'
# instantops (packer/scripts/provision.sh)
net.core.rmem_max = 33554432
net.core.rmem_default = 8388608
net.core.wmem_max = 8388608
net.core.netdev_max_backlog = 10000
net.core.somaxconn = 4096
net.ipv4.tcp_max_syn_backlog = 4096
net.ipv4.udp_mem = 65536 131072 262144
fs.file-max = 2097152
vm.swappiness = 1
SYSCTL
if $booted; then sysctl -q -p /etc/sysctl.d/60-instantops.conf || say "some sysctls were refused (a container?)"; fi

# The unit, and its memory cap from the config's memory.limit: the limit plus
# a quarter (at least 256 MiB) for the kernel's share and transients, so the
# cgroup only stops a runaway, never the appliance's own shedding.
install -m 0644 "$stage/instantops.service" /etc/systemd/system/instantops.service
install -m 0644 "$stage/instantops-data.service" /etc/systemd/system/instantops-data.service
limit=$(sed -n 's/^[[:space:]]*limit[[:space:]]*=[[:space:]]*"\{0,1\}\([0-9A-Za-z]*\)"\{0,1\}.*/\1/p' "$config" | head -1)
limit_bytes=$(LIMIT="${limit:-1GiB}" awk 'BEGIN {
  v = ENVIRON["LIMIT"]; n = v + 0; u = v; sub(/^[0-9]+/, "", u)
  m["B"] = 1; m[""] = 1; m["KiB"] = 1024; m["MiB"] = 1048576; m["GiB"] = 1073741824; m["TiB"] = 1099511627776
  m["KB"] = 1e3; m["MB"] = 1e6; m["GB"] = 1e9; m["TB"] = 1e12
  if (!(u in m)) { print "bad"; exit }
  printf "%.0f\n", n * m[u] }')
[ "$limit_bytes" != bad ] || { echo "provision: memory.limit \"$limit\" in $config is not a size" >&2; exit 1; }
headroom=$((limit_bytes / 4)); ((headroom >= 268435456)) || headroom=268435456
install -d -m 0755 /etc/systemd/system/instantops.service.d
cat > /etc/systemd/system/instantops.service.d/memory.conf <<UNIT
# From memory.limit = "${limit:-1GiB}" in $config plus headroom; written by provision.sh.
[Service]
MemoryMax=$((limit_bytes + headroom))
UNIT

systemctl enable instantops.service instantops-data.service >/dev/null 2>&1 || systemctl enable instantops.service instantops-data.service
if $booted; then
  systemctl daemon-reload
  systemctl restart instantops.service
  say "instantops restarted"
fi
say "done: $bin, $config, MemoryMax=$((limit_bytes + headroom))"
