# Every port of CONTRACT.md, forwarded from the host's loopback to the box:
# [name, guest port, host port, protocol]. Syslog's 514 arrives on the host's
# 5514 (ports below 1024 need root on the host). Shared by the Vagrantfile and
# the one packed into the box (box.Vagrantfile).
INSTANTOPS_PORTS = [
  ["http", 8080, 8080, "tcp"],
  ["statsd_udp", 8125, 8125, "udp"],
  ["statsd_tcp", 8125, 8125, "tcp"],
  ["statsd_admin", 8126, 8126, "tcp"],
  ["carbon_tcp", 2003, 2003, "tcp"],
  ["carbon_udp", 2003, 2003, "udp"],
  ["carbon_pickle", 2004, 2004, "tcp"],
  ["syslog_udp", 514, 5514, "udp"],
  ["syslog_tcp", 514, 5514, "tcp"],
  ["json_tcp", 5000, 5000, "tcp"],
  ["gelf_udp", 12201, 12201, "udp"],
  ["resp", 6379, 6379, "tcp"],
  ["elasticsearch", 9200, 9200, "tcp"],
].freeze

def instantops_forward(config)
  INSTANTOPS_PORTS.each do |name, guest, host, protocol|
    config.vm.network "forwarded_port", id: "#{name}", guest: guest, host: host,
                      protocol: protocol, host_ip: "127.0.0.1", auto_correct: true
  end
end
