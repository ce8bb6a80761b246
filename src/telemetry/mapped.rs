//! Gives back the resident pages of read-only file mappings under a folder:
//! the log index's segment files, which Tantivy maps and every search
//! touches. Their pages count in the resident set, though they are the
//! kernel's page cache, clean and shared. Under memory pressure the
//! governor's reliever drops them from this process's page tables
//! (`madvise(MADV_DONTNEED)`): the file stays cached by the kernel, and the
//! next read of a page maps it again from there.

use std::path::Path;

/// Drops the resident pages of every read-only mapping of a file under
/// `dir`; returns how many bytes of mappings were advised.
pub fn release(dir: &Path) -> u64 {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return 0 };
    let Some(dir) = dir.to_str() else { return 0 };
    let mut advised = 0;
    for (start, end) in read_only_under(&maps, dir) {
        // SAFETY: [start, end) is a whole mapping of this process, read-only
        // and backed by a file: MADV_DONTNEED only unmaps its pages, which a
        // later access faults back in from the file with the same content.
        // A mapping unmapped meanwhile makes the call fail (ENOMEM), not
        // touch other memory: the range then holds no mapping at all, or a
        // new one that a later release would drop the same harmless way.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            advised += (end - start) as u64;
        }
    }
    advised
}

/// The address ranges of `/proc/self/maps` lines that map a file under
/// `dir` without write permission.
fn read_only_under<'a>(maps: &'a str, dir: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    maps.lines().filter_map(move |line| {
        let mut fields = line.split_ascii_whitespace();
        let (range, perms) = (fields.next()?, fields.next()?);
        let path = fields.nth(3)?;
        if !perms.starts_with('r') || perms.as_bytes().get(1) != Some(&b'-') {
            return None;
        }
        let rest = path.strip_prefix(dir)?;
        if !rest.starts_with('/') {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        Some((usize::from_str_radix(start, 16).ok()?, usize::from_str_radix(end, 16).ok()?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_mappings_under_the_folder() {
        let maps = "\
7f0000000000-7f0000001000 r--s 00000000 08:01 12 /data/logs/p1/a.idx
7f0000002000-7f0000003000 rw-s 00000000 08:01 13 /data/logs/p1/b.idx
7f0000004000-7f0000005000 r--p 00000000 08:01 14 /data/logs2/c.idx
7f0000006000-7f0000008000 r--p 00000000 08:01 15 /data/logs/d.store
7f0000009000-7f000000a000 r-xp 00000000 08:01 16 /usr/bin/instantops
7f000000b000-7f000000c000 rw-p 00000000 00:00 0
";
        let got: Vec<_> = read_only_under(maps, "/data/logs").collect();
        assert_eq!(got, vec![(0x7f0000000000, 0x7f0000001000), (0x7f0000006000, 0x7f0000008000)]);
    }

    /// The Rss of the mapping starting at `start`, from /proc/self/smaps.
    fn resident_kb(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{start:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines.find_map(|l| l.strip_prefix("Rss:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap()
    }

    #[test]
    fn a_mapped_file_leaves_the_resident_set_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("segment");
        let len = 32 << 20;
        let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: a shared read-only mapping of a file this test owns.
        let map =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, std::os::fd::AsRawFd::as_raw_fd(&file), 0) };
        assert_ne!(map, libc::MAP_FAILED);
        // SAFETY: the mapping is len bytes long and lives until munmap below.
        let mapped = unsafe { std::slice::from_raw_parts(map as *const u8, len) };
        let sum = |m: &[u8]| m.iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>();
        let expected = sum(&content);
        assert_eq!(sum(mapped), expected);
        assert_eq!(resident_kb(map as usize), (len >> 10) as u64, "every page read is resident");
        assert!(release(dir.path()) >= len as u64);
        assert_eq!(resident_kb(map as usize), 0, "no page resident after release");
        assert_eq!(sum(mapped), expected, "the pages read back the same");
        // SAFETY: unmapping the mapping made above, no longer borrowed.
        unsafe { libc::munmap(map, len) };
    }
}
