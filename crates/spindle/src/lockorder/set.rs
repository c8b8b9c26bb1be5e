//! The lock sets [`acquire`](super::acquire) takes: [`OrderedLock`] (a
//! [`Lock`] or an [`RLock`]), [`LockSet`] (tuples, slices, arrays, `Vec`s of
//! them), and the inline storage that spares an allocation for up to four.
#![forbid(unsafe_code)]

use crate::sync::raw::Locked;
use crate::sync::{Lock, LockId, RLock};
use crate::util::Wait;
use std::panic::Location;

mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::sync::Lock {}
    impl Sealed for crate::sync::RLock {}
}

/// A lock [`acquire`](super::acquire) can take: [`Lock`] or [`RLock`] (sealed).
pub trait OrderedLock: sealed::Sealed + Sync {
    /// The lock's id: its place in the global order.
    fn lock_id(&self) -> LockId;
    /// Internal: the lock as one of the known kinds.
    #[doc(hidden)]
    fn __any(&self) -> AnyLock<'_>;
}

impl OrderedLock for Lock {
    fn lock_id(&self) -> LockId {
        self.id()
    }
    fn __any(&self) -> AnyLock<'_> {
        AnyLock(Kind::Lock(self))
    }
}

impl OrderedLock for RLock {
    fn lock_id(&self) -> LockId {
        self.id()
    }
    fn __any(&self) -> AnyLock<'_> {
        AnyLock(Kind::RLock(self))
    }
}

/// Internal: a borrowed [`Lock`] or [`RLock`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct AnyLock<'a>(Kind<'a>);

#[derive(Clone, Copy, Debug)]
enum Kind<'a> {
    Lock(&'a Lock),
    RLock(&'a RLock),
}

impl AnyLock<'_> {
    #[inline]
    pub(crate) fn id(self) -> LockId {
        match self.0 {
            Kind::Lock(l) => l.id(),
            Kind::RLock(l) => l.id(),
        }
    }
    #[inline]
    pub(crate) fn take(self, wait: Wait, site: &'static Location<'static>) -> Locked {
        match self.0 {
            Kind::Lock(l) => l.acquire_locked(wait, site),
            Kind::RLock(l) => l.acquire_locked(wait, site),
        }
    }
    #[inline]
    pub(crate) fn release(self) {
        // Fails only if the caller released a lock of the set behind the
        // guard's back; there is nothing left to undo then.
        let _ = match self.0 {
            Kind::Lock(l) => l.release(),
            Kind::RLock(l) => l.release(),
        };
    }
}

/// A lock of a set and its id (read once).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    pub(crate) id: LockId,
    pub(crate) lock: AnyLock<'a>,
}

/// The locks of one call, without a heap allocation for up to four.
#[derive(Debug)]
pub(crate) enum Set<'a> {
    Empty,
    Small([Entry<'a>; 4], usize),
    Large(Vec<Entry<'a>>),
}

impl<'a> Set<'a> {
    #[inline]
    fn push(&mut self, e: Entry<'a>) {
        match self {
            Set::Empty => *self = Set::Small([e; 4], 1),
            Set::Small(items, n) if *n < 4 => {
                items[*n] = e;
                *n += 1;
            }
            Set::Small(items, n) => {
                let mut v = items[..*n].to_vec();
                v.push(e);
                *self = Set::Large(v);
            }
            Set::Large(v) => v.push(e),
        }
    }
    #[inline]
    pub(crate) fn as_slice(&self) -> &[Entry<'a>] {
        match self {
            Set::Empty => &[],
            Set::Small(items, n) => &items[..*n],
            Set::Large(v) => v,
        }
    }
    #[inline]
    pub(crate) fn as_mut_slice(&mut self) -> &mut [Entry<'a>] {
        match self {
            Set::Empty => &mut [],
            Set::Small(items, n) => &mut items[..*n],
            Set::Large(v) => v,
        }
    }
}

/// Internal: gathers the locks of a [`LockSet`].
#[doc(hidden)]
#[derive(Debug)]
pub struct Collector<'s, 'a>(pub(crate) &'s mut Set<'a>);

impl<'a> Collector<'_, 'a> {
    /// Adds one lock.
    #[inline]
    pub fn push(&mut self, lock: AnyLock<'a>) {
        self.0.push(Entry {
            id: lock.id(),
            lock,
        });
    }
}

/// A set of locks for [`acquire`](super::acquire): one `&lock`, a tuple of up to six
/// (`(&a, &b)`, mixing [`Lock`] and [`RLock`]), a slice, array or `Vec` of
/// references.
pub trait LockSet<'a> {
    /// Internal: appends the locks to `out`.
    #[doc(hidden)]
    fn __collect(self, out: &mut Collector<'_, 'a>);
}

impl<'a, L: OrderedLock> LockSet<'a> for &'a L {
    fn __collect(self, out: &mut Collector<'_, 'a>) {
        out.push(self.__any());
    }
}

impl<'a, L: OrderedLock> LockSet<'a> for &[&'a L] {
    fn __collect(self, out: &mut Collector<'_, 'a>) {
        for l in self.iter() {
            out.push(l.__any());
        }
    }
}

impl<'a, L: OrderedLock, const N: usize> LockSet<'a> for [&'a L; N] {
    fn __collect(self, out: &mut Collector<'_, 'a>) {
        for l in self.iter() {
            out.push(l.__any());
        }
    }
}

impl<'a, L: OrderedLock> LockSet<'a> for Vec<&'a L> {
    fn __collect(self, out: &mut Collector<'_, 'a>) {
        for l in self.iter() {
            out.push(l.__any());
        }
    }
}

macro_rules! tuple_set {
    ($($t:ident $v:ident),+) => {
        impl<'a, $($t: OrderedLock),+> LockSet<'a> for ($(&'a $t,)+) {
            fn __collect(self, out: &mut Collector<'_, 'a>) {
                let ($($v,)+) = self;
                $(out.push($v.__any());)+
            }
        }
    };
}
tuple_set!(A a);
tuple_set!(A a, B b);
tuple_set!(A a, B b, C c);
tuple_set!(A a, B b, C c, D d);
tuple_set!(A a, B b, C c, D d, E e);
tuple_set!(A a, B b, C c, D d, E e, F f);
