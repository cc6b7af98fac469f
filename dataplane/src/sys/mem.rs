//! Memory hints for the large, randomly indexed FIB tables (DIR-24-8's
//! 64 MiB first level, a 1M-entry label table): transparent huge pages
//! (madvise(2) MADV_HUGEPAGE) cut the TLB misses of random lookups. Only a
//! hint: without THP the tables work the same, a little slower.

/// Asks for huge pages on the part of `v` that covers whole 4 KiB pages.
/// Call before the memory is first written.
pub fn advise_huge_pages<T>(v: &mut [T]) {
    const PAGE: usize = 4096;
    let start = v.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(v);
    let first = start.div_ceil(PAGE) * PAGE;
    if end <= first + PAGE {
        return;
    }
    let len = (end - first) / PAGE * PAGE;
    // SAFETY: [first, first + len) lies inside `v`'s allocation and is page
    // aligned; MADV_HUGEPAGE only changes how the kernel backs the pages,
    // never their contents, so no Rust reference is affected.
    unsafe { libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
}
