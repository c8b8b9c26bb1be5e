//! [`Event`]: Python's `threading.Event` / `multiprocessing.Event`, once for
//! every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::loom::plc::SpinWait;

use crate::sync::contract::BlockingEvent;
use crate::sync::raw::{RawWord, Scope};
use crate::util::{deadline_after, passed};

/// Bit 0 of the flag word: the flag is set. The other bits count the `set`s
/// that found it clear, so a waiter that sleeps through a `set` + `clear`
/// still sees that a set happened.
const SET: usize = 1;

/// The state of an [`Event`] in its scope's memory.
#[repr(C)]
pub(crate) struct EventState<S: Scope> {
    pub(crate) flag: S::Word,
    /// Threads inside `wait` (past the fast path): `set` wakes the flag word
    /// only when there are some.
    pub(crate) waiting: S::Word,
}

/// A flag threads can wait on, Python's `threading.Event`
/// ([`spindle::sync::Event`](crate::sync::Event)) and `multiprocessing.Event`
/// ([`spindle::ipc::sync::Event`](crate::ipc::sync::Event)):
/// [`set`](Event::set) wakes every waiter, [`clear`](Event::clear) resets it.
///
/// As in Python, a thread that was already waiting when `set` ran returns
/// `true` even if `clear` follows immediately: the wake-up cannot be lost.
/// There is no lock inside, so a process that dies cannot wedge it.
///
/// # Examples
///
/// ```
/// use spindle::sync::Event;
/// use std::sync::Arc;
///
/// let started = Arc::new(Event::new());
/// let s2 = Arc::clone(&started);
/// let t = std::thread::spawn(move || s2.set());
/// started.wait(); // returns once the thread has set the flag
/// assert!(started.is_set());
/// t.join().unwrap();
/// ```
pub struct Event<S: Scope> {
    pub(crate) state: S::Place<EventState<S>>,
}

impl<S: Scope> Event<S> {
    /// Whether the flag is set (`is_set()`).
    #[inline]
    pub fn is_set(&self) -> bool {
        self.state.flag.load(Acquire) & SET != 0
    }

    /// Sets the flag and wakes every waiting thread (`set()`).
    #[inline]
    pub fn set(&self) {
        let st = &*self.state;
        let mut cur = st.flag.load(Relaxed);
        loop {
            if cur & SET != 0 {
                return;
            }
            let next = (cur.wrapping_add(2) & S::Word::MAX) | SET;
            match st.flag.compare_exchange_weak(cur, next, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        // With `wait` (count, then read the flag; both SeqCst) a Dekker
        // pair: either we see the waiter, or it sees the flag.
        if st.waiting.load(SeqCst) != 0 {
            S::wake(&st.flag, usize::MAX);
        }
    }

    /// Clears the flag (`clear()`); later waits block until the next `set`.
    #[inline]
    pub fn clear(&self) {
        let flag = &self.state.flag;
        let mut cur = flag.load(Relaxed);
        while cur & SET != 0 {
            match flag.compare_exchange_weak(cur, cur & !SET, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(now) => cur = now,
            }
        }
    }

    /// Blocks until the flag is set (`wait()`).
    pub fn wait(&self) {
        self.wait_inner(None);
    }

    /// Returns whether the flag is set, never blocking (`wait(0)`).
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// Blocks until the flag is set or `timeout` passed (`wait(timeout)`);
    /// returns `true` if woken by `set` or found set, `false` on timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let event = spindle::sync::Event::new();
    /// assert!(!event.wait_timeout(Duration::from_millis(1)));
    /// event.set();
    /// assert!(event.wait_timeout(Duration::from_secs(1)));
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_inner(deadline_after(timeout))
    }

    /// Blocks until the flag is set or `deadline`; `false` on timeout.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_inner(Some(deadline))
    }

    /// Waits asynchronously until the flag is set: the async face of
    /// [`wait`](Event::wait), Python's `await asyncio.Event.wait()`.
    ///
    /// Runtime-agnostic (any executor may poll it; a waiting task and a
    /// blocked thread share one event). The wait starts at the first poll:
    /// a `set` after that resolves it even if `clear` follows at once, as
    /// for a blocked thread. For a timeout, wrap it in your runtime's
    /// timeout.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: waiting consumes nothing (a `set` wakes every waiter),
    /// so a dropped future only withdraws its registration and takes no
    /// wake-up from anyone else.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// use std::sync::Arc;
    /// let ev = Arc::new(spindle::sync::Event::new());
    /// let e2 = Arc::clone(&ev);
    /// let t = std::thread::spawn(move || e2.set());
    /// block_on(ev.wait_async());
    /// assert!(ev.is_set());
    /// t.join().unwrap();
    /// ```
    pub fn wait_async(&self) -> EventWait<'_, S> {
        EventWait {
            event: self,
            first: None,
            watch: None,
            counted: false,
        }
    }

    /// Test support, not part of the API: how many threads are blocked in
    /// this object right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.state.waiting.load(SeqCst)
    }

    fn wait_inner(&self, deadline: Option<Instant>) -> bool {
        let st = &*self.state;
        let first = st.flag.load(Acquire);
        if first & SET != 0 {
            return true;
        }
        // A short spin catches a `set` that is already on its way (ping-pong
        // between two running threads) without a trip through the kernel.
        let mut spin = SpinWait::new();
        while spin.spin() {
            if st.flag.load(Acquire) != first {
                return true;
            }
        }
        st.waiting.fetch_add(1, SeqCst);
        let set = loop {
            let cur = st.flag.load(SeqCst);
            // Set now, or set (and maybe cleared) since we started waiting.
            if cur != first {
                break true;
            }
            if passed(deadline) {
                break false;
            }
            S::wait(&st.flag, cur, deadline);
        };
        st.waiting.fetch_sub(1, SeqCst);
        set
    }
}

/// The future of [`Event::wait_async`]: resolves once the flag is set.
#[must_use = "futures do nothing unless polled"]
pub struct EventWait<'a, S: Scope> {
    event: &'a Event<S>,
    /// The flag word at the first poll: any change means a `set`.
    first: Option<usize>,
    watch: Option<S::Watch>,
    /// Whether this future counts itself in `waiting` (so `set` wakes).
    counted: bool,
}

impl<S: Scope> EventWait<'_, S> {
    fn finish(&mut self) -> Poll<()> {
        if let Some(w) = self.watch.take() {
            S::unwatch(w);
        }
        if std::mem::take(&mut self.counted) {
            self.event.state.waiting.fetch_sub(1, SeqCst);
        }
        Poll::Ready(())
    }
}

impl<S: Scope> Future for EventWait<'_, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let st = &*this.event.state;
        let first = *this.first.get_or_insert_with(|| st.flag.load(Acquire));
        if first & SET != 0 {
            return this.finish();
        }
        // A previous registration (woken or not) is replaced by one with
        // this poll's waker.
        if let Some(w) = this.watch.take() {
            S::unwatch(w);
        }
        if !this.counted {
            // As in `wait_inner`: count, then read the flag (both SeqCst).
            st.waiting.fetch_add(1, SeqCst);
            this.counted = true;
        }
        if st.flag.load(SeqCst) != first {
            return this.finish();
        }
        match S::watch(&this.event.state, &st.flag, first, cx.waker()) {
            // The word changed: a `set` happened since the first poll.
            None => this.finish(),
            Some(w) => {
                this.watch = Some(w);
                Poll::Pending
            }
        }
    }
}

impl<S: Scope> Drop for EventWait<'_, S> {
    fn drop(&mut self) {
        // Nothing to pass on: `set` wakes every waiter.
        let _ = self.finish();
    }
}

impl<S: Scope> fmt::Debug for EventWait<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("registered", &self.watch.is_some())
            .finish()
    }
}

impl<S: Scope> fmt::Debug for Event<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

impl<S: Scope> BlockingEvent for Event<S> {
    type Error = Infallible;

    fn is_set(&self) -> Result<bool, Infallible> {
        Ok(Event::is_set(self))
    }
    fn set(&self) -> Result<(), Infallible> {
        Event::set(self);
        Ok(())
    }
    fn clear(&self) -> Result<(), Infallible> {
        Event::clear(self);
        Ok(())
    }
    fn wait(&self) -> Result<(), Infallible> {
        Event::wait(self);
        Ok(())
    }
    fn try_wait(&self) -> Result<bool, Infallible> {
        Ok(Event::try_wait(self))
    }
    fn wait_deadline(&self, deadline: Instant) -> Result<bool, Infallible> {
        Ok(Event::wait_deadline(self, deadline))
    }
}
