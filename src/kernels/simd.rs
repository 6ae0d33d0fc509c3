//! Runtime choice of the instruction set used by the vectorised kernels.
//!
//! The kernels are written once as plain, branch-free loops and compiled several
//! times: for AVX-512, for AVX2+FMA and for the baseline target. The widest
//! variant the CPU supports is picked at run time. [`set_simd_enabled`] (or the
//! environment variable `GATED_NO_SIMD=1`, read once) forces the baseline
//! variant, so tests can check that every variant gives the same numbers;
//! `GATED_CPU_CAPABILITY=avx2` (or `default`) caps the level as PyTorch's
//! `ATEN_CPU_CAPABILITY` does.

use std::sync::atomic::{AtomicU8, Ordering};

/// The instruction set a kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The compilation target's baseline (SSE2 on x86-64): the fallback.
    Baseline,
    /// AVX2 and FMA.
    Avx2,
    /// AVX-512 F.
    Avx512,
}

const UNKNOWN: u8 = 0;
const BASELINE: u8 = 1;
const AVX2: u8 = 2;
const AVX512: u8 = 3;

static LEVEL: AtomicU8 = AtomicU8::new(UNKNOWN);

fn detect() -> u8 {
    if std::env::var_os("GATED_NO_SIMD").is_some_and(|v| v != "0" && !v.is_empty()) {
        return BASELINE;
    }
    detect_hw().min(capability_cap(
        std::env::var("GATED_CPU_CAPABILITY").ok().as_deref(),
    ))
}

/// The widest level `GATED_CPU_CAPABILITY` allows, named as PyTorch's
/// `ATEN_CPU_CAPABILITY` names them (`avx512`, `avx2`, `default`), so both
/// can be held to the same instruction set, e.g. to see how a CPU without
/// AVX-512 would fare. Unset or unknown: no cap.
fn capability_cap(value: Option<&str>) -> u8 {
    match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
        Some("avx2") => AVX2,
        Some("default") | Some("baseline") => BASELINE,
        _ => AVX512,
    }
}

/// The level the kernels use now.
#[inline]
pub fn level() -> Level {
    let mut l = LEVEL.load(Ordering::Relaxed);
    if l == UNKNOWN {
        l = detect();
        LEVEL.store(l, Ordering::Relaxed);
    }
    match l {
        AVX512 => Level::Avx512,
        AVX2 => Level::Avx2,
        _ => Level::Baseline,
    }
}

/// Enables the widest instruction set the CPU has (`true`), or forces the
/// baseline fallback (`false`). Process-wide; meant for tests and benchmarks.
pub fn set_simd_enabled(enabled: bool) {
    let l = if enabled { detect_hw() } else { BASELINE };
    LEVEL.store(l, Ordering::Relaxed);
}

fn detect_hw() -> u8 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return AVX512;
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return AVX2;
        }
    }
    BASELINE
}

/// Defines `pub fn $name($args)` that runs the body `$imp` compiled for the best
/// available instruction set. The body must be safe code; the `unsafe fn`
/// form forwards the caller's obligations to an unsafe body.
macro_rules! multiversion {
    ($(#[$doc:meta])* $vis:vis unsafe fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:path) => {
        $(#[$doc])*
        $vis unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: forwarded from the caller.
                    unsafe { $imp($($arg),*) }
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    // SAFETY: forwarded from the caller.
                    unsafe { $imp($($arg),*) }
                }
                match $crate::kernels::simd::level() {
                    // SAFETY: level() reports a level only when the CPU has
                    // it; the rest is forwarded from the caller.
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: as above.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            // SAFETY: forwarded from the caller.
            unsafe { $imp($($arg),*) }
        }
    };
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $imp:path) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? { $imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? { $imp($($arg),*) }
                match $crate::kernels::simd::level() {
                    // SAFETY: level() reports AVX-512 F only when the CPU has it
                    // (and AVX2 and FMA, which every AVX-512 CPU has).
                    $crate::kernels::simd::Level::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: level() reports AVX2 only when the CPU has AVX2 and FMA.
                    $crate::kernels::simd::Level::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::kernels::simd::Level::Baseline => {}
                }
            }
            $imp($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(test)]
mod tests {
    #[test]
    fn capability_names_cap_the_level() {
        assert_eq!(super::capability_cap(Some("avx2")), super::AVX2);
        assert_eq!(super::capability_cap(Some(" AVX2 ")), super::AVX2);
        assert_eq!(super::capability_cap(Some("default")), super::BASELINE);
        assert_eq!(super::capability_cap(Some("avx512")), super::AVX512);
        assert_eq!(super::capability_cap(None), super::AVX512);
    }
}
