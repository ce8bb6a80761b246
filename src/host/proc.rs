//! Reading Linux's `/proc` as Diamond's collectors do: pure parsers from a
//! file's text to numbers, so they are tested on fixed text. Counters
//! (jiffies, bytes, operations) come out raw; `mod.rs` turns them into rates.

/// CPU jiffies per state, in `/proc/stat` order, for `cpu` (the total) and each `cpuN`.
pub fn cpu(stat: &str) -> Vec<(String, Vec<(&'static str, u64)>)> {
    const STATES: [&str; 8] = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
    stat.lines()
        .filter(|l| l.starts_with("cpu"))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let name = if name == "cpu" { "total".to_owned() } else { name.to_owned() };
            let values: Vec<(&'static str, u64)> = STATES.iter().zip(it).filter_map(|(s, v)| Some((*s, v.parse().ok()?))).collect();
            Some((name, values))
        })
        .collect()
}

/// `processes` (forks), `procs_running`, `procs_blocked` and `ctxt` of `/proc/stat`.
pub fn proc_counts(stat: &str) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for key in ["processes", "procs_running", "procs_blocked", "ctxt"] {
        if let Some(v) = stat.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok()) {
            out.push((key, v));
        }
    }
    out
}

/// `/proc/meminfo` in bytes, by its own names (`MemTotal`, `MemFree`, ...).
pub fn meminfo(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let mut it = rest.split_whitespace();
            let v: u64 = it.next()?.parse().ok()?;
            let scale = if it.next() == Some("kB") { 1024 } else { 1 };
            Some((name.trim().replace(['(', ')'], "_"), v * scale))
        })
        .collect()
}

/// `loadavg.01/05/15`, `processes_running`, `processes_total` of `/proc/loadavg`.
pub fn loadavg(text: &str) -> Vec<(&'static str, f64)> {
    let f: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, name) in ["01", "05", "15"].iter().enumerate() {
        if let Some(v) = f.get(i).and_then(|v| v.parse().ok()) {
            out.push((*name, v));
        }
    }
    if let Some((running, total)) = f.get(3).and_then(|p| p.split_once('/')) {
        if let Ok(r) = running.parse() {
            out.push(("processes_running", r));
        }
        if let Ok(t) = total.parse() {
            out.push(("processes_total", t));
        }
    }
    out
}

/// Per block device of `/proc/diskstats` (whole disks and partitions, not
/// loop or ram devices): reads, read sectors, writes, write sectors, ms
/// doing I/O, I/O in progress.
pub struct Disk {
    pub name: String,
    pub reads: u64,
    pub read_sectors: u64,
    pub writes: u64,
    pub write_sectors: u64,
    pub io_ms: u64,
    pub in_progress: u64,
}

pub fn diskstats(text: &str) -> Vec<Disk> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = (*f.get(2)?).to_owned();
            if name.starts_with("loop") || name.starts_with("ram") || name.starts_with("dm-") && f.get(3) == Some(&"0") {
                return None;
            }
            let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            Some(Disk { name, reads: n(3)?, read_sectors: n(5)?, writes: n(7)?, write_sectors: n(9)?, in_progress: n(11)?, io_ms: n(12)? })
        })
        .collect()
}

/// Per interface of `/proc/net/dev`: Diamond's counter names and values.
pub fn netdev(text: &str) -> Vec<(String, Vec<(&'static str, u64)>)> {
    const RX: [(&str, usize); 4] = [("rx_byte", 0), ("rx_packets", 1), ("rx_errors", 2), ("rx_drop", 3)];
    const TX: [(&str, usize); 4] = [("tx_byte", 8), ("tx_packets", 9), ("tx_errors", 10), ("tx_drop", 11)];
    text.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let f: Vec<u64> = rest.split_whitespace().filter_map(|v| v.parse().ok()).collect();
            let values = RX.iter().chain(TX.iter()).filter_map(|(n, i)| Some((*n, *f.get(*i)?))).collect();
            Some((name.trim().to_owned(), values))
        })
        .collect()
}

/// The file systems Diamond's DiskSpaceCollector looks at, from
/// `/proc/mounts`: (device, mount point), one per mount point.
pub fn mounts(text: &str) -> Vec<(String, String)> {
    const TYPES: [&str; 12] = ["ext2", "ext3", "ext4", "xfs", "glusterfs", "nfs", "nfs4", "ntfs", "hfs", "fat32", "fat16", "btrfs"];
    let mut out: Vec<(String, String)> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(dev), Some(mount), Some(kind)) = (f.first(), f.get(1), f.get(2)) else { continue };
        if !TYPES.contains(kind) || !dev.contains('/') || ["/dev", "/proc", "/sys"].iter().any(|p| mount.starts_with(p)) {
            continue;
        }
        if !out.iter().any(|(d, _)| d == dev) {
            out.push((dev.to_string(), mount.to_string()));
        }
    }
    out
}

/// Diamond's metric name for a mount point: `/` is `root`, others `_var_lib`.
pub fn mount_name(mount: &str) -> String {
    let name = mount.replace(['/', '.'], "_").replace('\\', "");
    if name == "_" { "root".into() } else { name }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_kernel_writes() {
        let stat = "cpu  3003428 0 177929 3148189 43349 0 14211 7657 0 0\ncpu0 1425279 0 80090 1668116 12185 0 7970 3797 0 0\n\
                    intr 1 2\nctxt 9876\nbtime 1\nprocesses 4321\nprocs_running 3\nprocs_blocked 0\n";
        let c = cpu(stat);
        assert_eq!(c[0].0, "total");
        assert_eq!(c[0].1[0], ("user", 3_003_428));
        assert_eq!(c[1].0, "cpu0");
        assert_eq!(c[0].1[3], ("idle", 3_148_189));
        assert_eq!(proc_counts(stat), [("processes", 4321), ("procs_running", 3), ("procs_blocked", 0), ("ctxt", 9876)]);
        let mem = meminfo("MemTotal:       24000000 kB\nMemFree: 1000 kB\nHugePages_Total:       0\nActive(anon):  8 kB\n");
        assert_eq!(mem[0], ("MemTotal".into(), 24_000_000 * 1024));
        assert_eq!(mem[2], ("HugePages_Total".into(), 0));
        assert_eq!(mem[3].0, "Active_anon_");
        assert_eq!(
            loadavg("0.52 0.58 0.59 3/512 12345\n"),
            [("01", 0.52), ("05", 0.58), ("15", 0.59), ("processes_running", 3.0), ("processes_total", 512.0)]
        );
        let d = diskstats("   7       0 loop0 1 0 1 0 0 0 0 0 0 0 0\n 253       0 vda 100 5 2000 30 50 7 800 40 2 60 70 0 0 0 0\n");
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].name.as_str(), d[0].reads, d[0].read_sectors, d[0].writes, d[0].write_sectors, d[0].in_progress, d[0].io_ms),
            ("vda", 100, 2000, 50, 800, 2, 60)
        );
        let n = netdev("Inter-|\n face |\n  eth0: 1000 10 1 2 0 0 0 0 2000 20 3 4 0 0 0 0\n");
        assert_eq!(n[0].0, "eth0");
        assert_eq!(
            n[0].1,
            [
                ("rx_byte", 1000),
                ("rx_packets", 10),
                ("rx_errors", 1),
                ("rx_drop", 2),
                ("tx_byte", 2000),
                ("tx_packets", 20),
                ("tx_errors", 3),
                ("tx_drop", 4)
            ]
        );
        let m = mounts(
            "/dev/vda / ext4 rw 0 0\nproc /proc proc rw 0 0\n/dev/vda /var/lib/docker ext4 rw 0 0\n/dev/vdb1 /boot ext4 rw 0 0\ntmpfs /run tmpfs rw 0 0\n",
        );
        assert_eq!(m, [("/dev/vda".to_string(), "/".to_string()), ("/dev/vdb1".to_string(), "/boot".to_string())]);
        assert_eq!(mount_name("/"), "root");
        assert_eq!(mount_name("/var/lib"), "_var_lib");
    }
}
