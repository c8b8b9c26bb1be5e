//! Loom's atomics, with `SeqCst` modelled exactly.
//!
//! Loom treats a `SeqCst` access as `AcqRel` (its README: "causing Loom to
//! generate false alarms"), so two threads that each write one word and
//! read the other (`Event::set` vs `Event::wait`, `Semaphore::release` vs
//! `acquire`, a ring put vs a sleeping getter) could both read the old
//! values, which `SeqCst` forbids. Loom's `SeqCst` fences are exact, so an
//! access with `SeqCst` is modelled as `fence(SeqCst); access; fence(SeqCst)`:
//! at least as strong as a `SeqCst` access, and exactly what x86 does.
//! Weaker orderings are passed to loom unchanged, so a missing `SeqCst`
//! still shows up.
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

use ::loom::sync::atomic::fence;

/// Runs `op` fenced if any of its orderings is `SeqCst`.
#[inline]
fn sc<R>(orders: &[Ordering], op: impl FnOnce() -> R) -> R {
    let seq_cst = orders.contains(&Ordering::SeqCst);
    if seq_cst {
        fence(Ordering::SeqCst);
    }
    let r = op();
    if seq_cst {
        fence(Ordering::SeqCst);
    }
    r
}

macro_rules! lazy_atomic {
    ($name:ident, $t:ty) => {
        #[doc = concat!("`std::sync::atomic::", stringify!($name), "` for the model.")]
        pub struct $name(::loom::sync::atomic::$name);

        impl $name {
            pub fn new(v: $t) -> Self {
                $name(::loom::sync::atomic::$name::new(v))
            }

            fn get(&self) -> &::loom::sync::atomic::$name {
                &self.0
            }

            pub fn load(&self, o: Ordering) -> $t {
                sc(&[o], || self.get().load(o))
            }

            pub fn store(&self, v: $t, o: Ordering) {
                sc(&[o], || self.get().store(v, o))
            }

            pub fn swap(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().swap(v, o))
            }

            pub fn compare_exchange(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                sc(&[success, failure], || {
                    self.get().compare_exchange(current, new, success, failure)
                })
            }

            pub fn compare_exchange_weak(
                &self,
                current: $t,
                new: $t,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$t, $t> {
                sc(&[success, failure], || {
                    self.get()
                        .compare_exchange_weak(current, new, success, failure)
                })
            }

            pub fn fetch_and(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_and(v, o))
            }

            pub fn fetch_or(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_or(v, o))
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

macro_rules! lazy_atomic_int {
    ($name:ident, $t:ty) => {
        lazy_atomic!($name, $t);

        impl $name {
            pub fn fetch_add(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_add(v, o))
            }

            pub fn fetch_sub(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_sub(v, o))
            }

            pub fn fetch_max(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_max(v, o))
            }

            pub fn fetch_min(&self, v: $t, o: Ordering) -> $t {
                sc(&[o], || self.get().fetch_min(v, o))
            }

            pub fn fetch_update(
                &self,
                set_order: Ordering,
                fetch_order: Ordering,
                f: impl FnMut($t) -> Option<$t>,
            ) -> Result<$t, $t> {
                sc(&[set_order, fetch_order], || {
                    self.get().fetch_update(set_order, fetch_order, f)
                })
            }
        }
    };
}

lazy_atomic!(AtomicBool, bool);
lazy_atomic_int!(AtomicU8, u8);
lazy_atomic_int!(AtomicU32, u32);
lazy_atomic_int!(AtomicU64, u64);
lazy_atomic_int!(AtomicUsize, usize);
