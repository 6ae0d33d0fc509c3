//! Process-wide allocator settings for long training runs.

/// Keeps freed memory in the process instead of handing it back to the OS,
/// in one heap shared by all threads.
///
/// Every training step allocates and frees the same large activation and
/// gradient buffers. glibc serves blocks above its mmap threshold (128 KiB,
/// growing to at most 32 MiB) with fresh `mmap`s and trims the heap top when
/// it is free, so each step page-faults those buffers in again and zeroes
/// them in the kernel: about 7 % of a benchmark-B step (perf, 2 cores). With
/// `mmap` off and trimming at 1 GiB, freed blocks are reused from the heap;
/// peak RSS is unchanged (it is the high-water mark either way).
///
/// One heap (arena) for all threads: the steps run on rayon's workers
/// (`threads::in_pool`), and with an arena per thread a block freed by one
/// worker is not reused by another. `gated bench`, C's peak RSS: 271 MiB
/// against 294-313 with an arena per thread, at the same speed (the hot
/// loops do not allocate, so the shared arena's lock is not contended).
///
/// Only the `gated` binary calls this; a library user decides for their own
/// process. Does nothing outside glibc.
pub fn retain_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's tuning parameters; called before
    // any threads are started, as glibc recommends.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// glibc's tunable that backs the heap with transparent huge pages.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const HUGE_PAGES_TUNABLE: &str = "glibc.malloc.hugetlb";

/// Restarts the program once with glibc's heap on transparent huge pages,
/// where the kernel gives them only on request (`madvise` mode, the usual
/// default).
///
/// The GEMMs stream weights and activations of several MiB; with 4 KiB pages
/// every 4 KiB of a packed weight panel is a TLB miss and a stop for the
/// hardware prefetcher. With 2 MiB pages, two alternating rounds on 2 cores
/// gave training steps of 1229-1243 ms against 1317-1338 ms for benchmark D,
/// 36.1-36.6 against 39.3-43.7 ms for B and 27.6-29.7 against 29.0-34.5 ms
/// for B-GRU (C and A moved both ways within the host's noise). glibc
/// reads its tunables only at start-up, hence the `exec`; it keeps the
/// process id, arguments and open files. Set `GATED_NO_HUGE_PAGES=1` to
/// skip it. Returns (doing nothing) when the tunable is already set, the
/// kernel does not use `madvise` mode, or the `exec` fails.
pub fn request_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains(HUGE_PAGES_TUNABLE)
            || std::env::var_os("GATED_NO_HUGE_PAGES").is_some_and(|v| v != "0")
        {
            return;
        }
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .unwrap_or_default();
        if !mode.contains("[madvise]") {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let tunables = if current.is_empty() {
            format!("{HUGE_PAGES_TUNABLE}=1")
        } else {
            format!("{current}:{HUGE_PAGES_TUNABLE}=1")
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // Returns only if the exec failed; then carry on with small pages.
        let _ = cmd.args(args).env("GLIBC_TUNABLES", tunables).exec();
    }
}
