//! Page-granular memory for the per-peer buffers: anonymous mappings whose
//! pages cost resident memory only once written ([`map`]), and a way to
//! hand written pages back to the kernel when what they hold is no longer
//! needed ([`release`]). Two system calls (`mmap`, `madvise`), behind safe
//! functions; with [`crate::sockopt`] the only `unsafe` of the crate.
//!
//! Why not the allocator: whether a large `vec![0; n]` is mapped lazily
//! depends on the global allocator (glibc: above a threshold that moves;
//! others: not at all), and nothing in `std` gives pages back.

#![allow(unsafe_code)]

use std::sync::OnceLock;

/// The system's page size (4096 where `sysconf` cannot say).
pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf reads a constant of the system.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(p)
            .ok()
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096)
    })
}

/// `n` rounded up to whole pages.
pub(crate) fn round_up(n: usize) -> usize {
    n.div_ceil(page_size()) * page_size()
}

/// `len` bytes (a multiple of the page size) of private anonymous memory,
/// zero, page-aligned, never unmapped. Resident only where written. Huge
/// pages are refused for it, so one write never makes 2 MiB resident.
/// Falls back to the global allocator if the mapping fails.
pub(crate) fn map(len: usize) -> &'static mut [u8] {
    // SAFETY: a new private anonymous mapping; no existing memory is
    // affected. On success the kernel returns `len` bytes readable and
    // writable, zero-filled, which nothing else refers to; they are never
    // unmapped, so a `'static` exclusive borrow of them is sound.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        );
        if p == libc::MAP_FAILED || p.is_null() {
            return Box::leak(vec![0u8; len].into_boxed_slice());
        }
        // Advisory: without it the kernel may back the range with huge pages.
        let _ = libc::madvise(p, len, libc::MADV_NOHUGEPAGE);
        std::slice::from_raw_parts_mut(p.cast::<u8>(), len)
    }
}

/// Gives the whole pages inside `buf` back to the kernel: they cost no
/// resident memory until written again, and read as zero (or, for memory
/// not from [`map`], as whatever the kernel supplies) — `buf` must hold
/// nothing that is still needed. Returns the bytes given back.
pub(crate) fn release(buf: &mut [u8]) -> usize {
    let page = page_size();
    let start = buf.as_mut_ptr() as usize;
    let first = start.div_ceil(page) * page;
    let last = (start + buf.len()) / page * page;
    if last <= first {
        return 0;
    }
    let len = last - first;
    let Some(off) = first.checked_sub(start) else {
        return 0;
    };
    let Some(pages) = buf.get_mut(off..off + len) else {
        return 0;
    };
    // SAFETY: `pages` lies within `buf`, which is borrowed exclusively for
    // the call, and covers whole pages only, so no other object shares
    // them. MADV_DONTNEED changes only their contents (to zero for private
    // anonymous memory), which for plain bytes is like any write through
    // the exclusive borrow; the mapping stays valid.
    let r = unsafe { libc::madvise(pages.as_mut_ptr().cast(), len, libc::MADV_DONTNEED) };
    if r == 0 { len } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_memory_is_zero_page_aligned_and_released_pages_read_as_zero() {
        let page = page_size();
        let m = map(4 * page);
        assert_eq!(m.as_ptr() as usize % page, 0);
        assert!(m.iter().all(|&b| b == 0));
        m.fill(0xAB);
        // Only whole pages inside the slice: from mid-page 0 to mid-page 3
        // are pages 1 and 2.
        let n = release(&mut m[page / 2..3 * page + page / 2]);
        assert_eq!(n, 2 * page);
        assert!(m[..page].iter().all(|&b| b == 0xAB));
        assert!(m[page..3 * page].iter().all(|&b| b == 0));
        assert!(m[3 * page..].iter().all(|&b| b == 0xAB));
        // Less than a whole page: nothing.
        assert_eq!(release(&mut m[1..page]), 0);
        assert_eq!(m[1], 0xAB);
    }

    #[test]
    fn sizes_round_up_to_pages() {
        let page = page_size();
        assert_eq!(round_up(1), page);
        assert_eq!(round_up(page), page);
        assert_eq!(round_up(65535), 65536_usize.div_ceil(page) * page);
    }
}
