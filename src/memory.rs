//! Process-wide allocator settings for long training runs.

/// Keeps freed memory in the process instead of handing it back to the OS.
///
/// Every training step allocates and frees the same large activation and
/// gradient buffers. glibc serves blocks above its mmap threshold (128 KiB,
/// growing to at most 32 MiB) with fresh `mmap`s and trims the heap top when
/// it is free, so each step page-faults those buffers in again and zeroes
/// them in the kernel: about 7 % of a benchmark-B step (perf, 2 cores). With
/// `mmap` off and trimming at 1 GiB, freed blocks are reused from the heap;
/// peak RSS is unchanged (it is the high-water mark either way).
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
    }
}
