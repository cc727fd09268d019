//! The kernel heap (`alloc`): a linked-list allocator over one contiguous
//! block carved at boot, behind a spin lock (allocation is a boot-time and
//! setup-time activity; the token path allocates nothing).

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use linked_list_allocator::Heap;
use spin::Mutex;

struct KernelHeap(Mutex<Heap>);

#[cfg_attr(feature = "runtime", global_allocator)]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

// SAFETY: the linked-list heap hands out disjoint blocks of the region it was
// given, and every access goes through the lock.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.lock().allocate_first_fit(layout).map(|p| p.as_ptr()).unwrap_or(core::ptr::null_mut())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: `ptr` came from `alloc` with the same layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) }
        }
    }
}

/// Hand `[start, start + bytes)` to the heap (once, from `mem::init`).
pub(super) fn init(start: u64, bytes: usize) {
    // SAFETY: [start, start + bytes) was just carved from free RAM, is
    // identity-mapped, and belongs to the heap alone from now on.
    unsafe { HEAP.0.lock().init(start as *mut u8, bytes) }
}
