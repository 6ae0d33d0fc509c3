//! How much memory the machine has free, for limits that should not exceed it.

/// The memory available to a new allocation without swapping, in bytes:
/// `MemAvailable` of `/proc/meminfo` on Linux; `None` where that is unknown.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available() {
        let t =
            "MemTotal:       16384000 kB\nMemFree:          100 kB\nMemAvailable:    8000000 kB\n";
        assert_eq!(parse_meminfo(t), Some(8_192_000_000));
        assert_eq!(parse_meminfo("MemTotal: 5 kB\n"), None);
        assert_eq!(parse_meminfo("MemAvailable: x kB\n"), None);
    }
}
