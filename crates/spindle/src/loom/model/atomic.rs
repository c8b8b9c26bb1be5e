//! Loom's atomics, with `SeqCst` modelled exactly enough for the crate's
//! Dekker pairs.
//!
//! Loom treats a `SeqCst` access as `AcqRel`, except that a `SeqCst` load
//! never returns a `SeqCst` store older than another `SeqCst` store to the
//! same word (its README: "causing Loom to generate false alarms"). The
//! initial value is not a `SeqCst` store, so in a Dekker pair — two
//! threads that each write one word and read the other, as `Event::set` vs
//! `Event::wait`, `Semaphore::release` vs `acquire`, a ring put vs a
//! sleeping getter — both loads may return the initial values, which
//! `SeqCst` forbids (C++20 [atomics.order]: a `SeqCst` load sees the last
//! `SeqCst` write before it in the total order, or a non-`SeqCst` write
//! that does not happen before that one; the initial value happens before
//! everything). So each atomic here is made with its value and then stores
//! it again with `SeqCst`: a `SeqCst` initial store that loom's rule then
//! orders correctly. Every access passes its own ordering to loom, so a
//! `Relaxed` or `Acquire` where a Dekker pair needs `SeqCst` still shows up
//! as the lost wake-up it is (checked: weakening `Event`'s waiter count to
//! `Relaxed` makes `loom_model_event_*` fail; putting `SeqCst` fences
//! around the accesses instead, as a first version did, hid that bug).
//!
//! A second imprecision: loom's modification order is partial, and a
//! read-modify-write may read any store not ordered before another, so
//! after `A: x.swap(1)`, `B: x.swap(1)` (which read A's) and `C:
//! x.store(0)`, C's own next `swap` could read B's 1 instead of its own 0 —
//! an order C++20 rules out (an RMW reads the write just before it in the
//! modification order, and `SeqCst` writes follow the single total order).
//! The ring's `W_WOKEN` flag showed this as a false deadlock. A `SeqCst`
//! store is therefore modelled as a `SeqCst` swap, whose result is ignored:
//! it is ordered after every earlier write of the word, as a `SeqCst`
//! store is, and additionally acquires from the write it replaces (the one
//! way this over-approximates: code relying on a plain store to
//! synchronise would pass here).
//!
//! `new` is not `const` here (loom's objects belong to an execution), which
//! is why the crate's `const fn` constructors go through
//! [`const_fn!`](crate::loom::const_fn).
#![forbid(unsafe_code)]
// A scope's word type is named by the public `Scope` trait, so these types
// are `pub` (in a private module); they exist only under `cfg(loom)` and
// mirror `std`'s documented methods.
#![allow(unreachable_pub, missing_docs)]

use std::fmt;
use std::sync::atomic::Ordering;

macro_rules! model_atomic {
    ($name:ident, $t:ty) => {
        #[doc = concat!("`std::sync::atomic::", stringify!($name), "` for the model.")]
        pub struct $name(::loom::sync::atomic::$name);

        impl $name {
            pub fn new(v: $t) -> Self {
                let a = ::loom::sync::atomic::$name::new(v);
                // The initial value as a `SeqCst` store (see the module docs).
                a.store(v, Ordering::SeqCst);
                $name(a)
            }

            fn get(&self) -> &::loom::sync::atomic::$name {
                &self.0
            }

            pub fn load(&self, o: Ordering) -> $t {
                self.get().load(o)
            }

            pub fn store(&self, v: $t, o: Ordering) {
                // A `SeqCst` store as a `SeqCst` swap (see the module docs).
                if o == Ordering::SeqCst {
                    self.get().swap(v, o);
                } else {
                    self.get().store(v, o)
                }
            }

            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                self.get().swap(v, o)
            }

            pub fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                self.get().compare_exchange(current, new, success, failure)
            }

            pub fn compare_exchange_weak(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                self.get()
                    .compare_exchange_weak(current, new, success, failure)
            }

            pub fn fetch_and(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_and(v, o)
            }

            pub fn fetch_or(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_or(v, o)
            }

            pub fn into_inner(self) -> $t {
                self.0.into_inner()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new(Default::default())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // No load: formatting must not add a step to the model.
                f.write_str(concat!(stringify!($name), "(..)"))
            }
        }
    };
}

macro_rules! model_atomic_int {
    ($name:ident, $t:ty) => {
        model_atomic!($name, $t);

        impl $name {
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_add(v, o)
            }

            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_sub(v, o)
            }

            pub fn fetch_max(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_max(v, o)
            }

            pub fn fetch_min(&self, v: $t, o: Ordering) -> $t {
                self.get().fetch_min(v, o)
            }

            pub fn fetch_update(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                f: impl FnMut($t) -> Option<$t>,
            ) -> Result<$t, $t> {
                self.get().fetch_update(set_order, fetch_order, f)
            }
        }
    };
}

model_atomic!(AtomicBool, bool);
model_atomic_int!(AtomicU8, u8);
model_atomic_int!(AtomicU32, u32);
model_atomic_int!(AtomicU64, u64);
model_atomic_int!(AtomicUsize, usize);
