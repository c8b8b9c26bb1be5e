//! [`Scheduler`]: Python's `sched.scheduler`, shareable across threads.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::clock::{Clock, MonotonicClock, Wakeup, deadline_after};
use super::error::{ActionPanicked, CancelError};
use super::event::ScheduledEvent;

type Action = Box<dyn FnOnce() + Send + 'static>;

/// Runs actions at given times, in time order, then priority order (lower first),
/// then insertion order — Python's `sched.scheduler`.
///
/// A `Scheduler` is a cheap handle: clones share one queue, and every method
/// takes `&self`, so actions (which run without the internal lock held) and other
/// threads can enter and cancel events while it runs. A [`run`](Self::run) that is
/// sleeping is woken early when an event due sooner is entered, so it is never
/// late for it (Python's scheduler would only notice after its current sleep).
///
/// Time comes from a [`Clock`]: real monotonic time by default, a
/// [`VirtualClock`](super::VirtualClock) in tests.
///
/// Actions are `FnOnce() + Send` closures; Python's `argument` and `kwargs` are
/// whatever the closure captures. An action that needs the scheduler captures a
/// clone of it (while it is queued, that clone keeps the queue alive).
///
/// # Examples
///
/// Three actions entered with priorities 3, 2, 1 at the same time run in
/// priority order:
///
/// ```
/// use spindle::sched::{Scheduler, VirtualClock};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// let sched = Scheduler::with_clock(VirtualClock::auto_advance());
/// let out = Arc::new(Mutex::new(Vec::new()));
/// for (priority, site) in [(3, "python"), (2, "shell"), (1, "java")] {
///     let out = out.clone();
///     sched.enter(Duration::from_secs(1), priority, move || out.lock().unwrap().push(site));
/// }
/// sched.run().unwrap();
/// assert_eq!(*out.lock().unwrap(), ["java", "shell", "python"]);
/// ```
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    clock: Arc<dyn Clock>,
    queue: Mutex<Queue>,
    wakeup: Wakeup,
}

struct Queue {
    events: BTreeMap<ScheduledEvent, Action>,
    next_sequence: u64,
}

impl Scheduler {
    /// A scheduler on real monotonic time (Python's `sched.scheduler()`).
    pub fn new() -> Self {
        Self::with_clock(MonotonicClock)
    }

    /// A scheduler reading `clock` (Python's `sched.scheduler(timefunc, delayfunc)`).
    pub fn with_clock(clock: impl Clock + 'static) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Scheduler {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                clock: Arc::new(clock),
                queue: Mutex::new(Queue {
                    events: BTreeMap::new(),
                    next_sequence: 0,
                }),
                wakeup: Wakeup::new(),
            }),
        }
    }

    /// The current time on this scheduler's clock.
    pub fn now(&self) -> Instant {
        self.inner.clock.now()
    }

    /// Enters `action` to run `delay` from now (Python's `scheduler.enter`).
    ///
    /// A delay too large to represent is clamped to decades from now.
    pub fn enter<F>(&self, delay: Duration, priority: i64, action: F) -> ScheduledEvent
    where
        F: FnOnce() + Send + 'static,
    {
        let time = deadline_after(self.now(), delay);
        self.enterabs(time, priority, action)
    }

    /// Enters `action` to run at `time` on this scheduler's clock (Python's
    /// `scheduler.enterabs`). A time already past runs at the next opportunity.
    pub fn enterabs<F>(&self, time: Instant, priority: i64, action: F) -> ScheduledEvent
    where
        F: FnOnce() + Send + 'static,
    {
        let (event, new_head) = {
            let mut queue = self.inner.queue.lock();
            let event = ScheduledEvent {
                time,
                priority,
                sequence: queue.next_sequence,
                scheduler: self.inner.id,
            };
            queue.next_sequence += 1;
            let new_head = queue
                .events
                .first_key_value()
                .is_none_or(|(head, _)| event < *head);
            queue.events.insert(event, Box::new(action));
            (event, new_head)
        };
        if new_head {
            // A runner sleeping for the old head must look again.
            self.inner.wakeup.wake();
        }
        event
    }

    /// Removes `event` from the queue so that it never runs (Python's
    /// `scheduler.cancel`).
    ///
    /// # Errors
    ///
    /// [`CancelError::NotQueued`] if it already ran, is running or was cancelled
    /// (Python raises `ValueError`); [`CancelError::ForeignEvent`] if it belongs to
    /// another scheduler.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sched::{CancelError, Scheduler};
    /// use std::time::Duration;
    ///
    /// let sched = Scheduler::new();
    /// let event = sched.enter(Duration::from_secs(60), 1, || unreachable!());
    /// sched.cancel(&event).unwrap();
    /// assert_eq!(sched.cancel(&event), Err(CancelError::NotQueued));
    /// sched.run().unwrap(); // nothing left: returns at once
    /// ```
    pub fn cancel(&self, event: &ScheduledEvent) -> Result<(), CancelError> {
        if event.scheduler != self.inner.id {
            return Err(CancelError::ForeignEvent);
        }
        let (was_head, action) = {
            let mut queue = self.inner.queue.lock();
            let was_head = queue
                .events
                .first_key_value()
                .is_some_and(|(head, _)| head == event);
            let action = queue.events.remove(event).ok_or(CancelError::NotQueued)?;
            (was_head, action)
        };
        // Dropped outside the lock: what the closure captured may call back into us.
        drop(action);
        if was_head {
            // A runner sleeping for it may now have less (or nothing) to wait for.
            self.inner.wakeup.wake();
        }
        Ok(())
    }

    /// Whether the queue is empty (Python's `scheduler.empty()`).
    #[doc(alias = "empty")]
    pub fn is_empty(&self) -> bool {
        self.inner.queue.lock().events.is_empty()
    }

    /// How many events are queued.
    pub fn len(&self) -> usize {
        self.inner.queue.lock().events.len()
    }

    /// The queued events in the order they will run (Python's `scheduler.queue`).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sched::Scheduler;
    /// use std::time::Duration;
    ///
    /// let sched = Scheduler::new();
    /// let later = sched.enter(Duration::from_secs(2), 1, || {});
    /// let sooner = sched.enter(Duration::from_secs(1), 1, || {});
    /// assert_eq!(sched.queue(), [sooner, later]);
    /// ```
    pub fn queue(&self) -> Vec<ScheduledEvent> {
        self.inner.queue.lock().events.keys().copied().collect()
    }

    /// Runs every event as it falls due, sleeping on the clock in between, until
    /// the queue is empty (Python's `scheduler.run()`).
    ///
    /// Events entered meanwhile, by actions or other threads, run too; a sleep is
    /// cut short when an event due sooner is entered.
    ///
    /// # Errors
    ///
    /// [`ActionPanicked`] if an action panics: the run stops there, the scheduler
    /// stays consistent and `run` may be called again for the rest.
    pub fn run(&self) -> Result<(), ActionPanicked> {
        loop {
            match self.step()? {
                Step::Empty => return Ok(()),
                Step::Ran => {}
                Step::Wait(head, token) => {
                    self.inner.clock.wait_until(&self.inner.wakeup, token, head);
                }
            }
        }
    }

    /// Runs the events that are due now and returns how long until the next one,
    /// or `None` if the queue is empty (Python's `scheduler.run(blocking=False)`).
    ///
    /// # Errors
    ///
    /// [`ActionPanicked`] if an action panics, as for [`run`](Self::run).
    ///
    /// # Examples
    ///
    /// Driving a scheduler from your own loop:
    ///
    /// ```
    /// use spindle::sched::{Scheduler, VirtualClock};
    /// use std::time::Duration;
    ///
    /// let clock = VirtualClock::new();
    /// let sched = Scheduler::with_clock(clock.clone());
    /// sched.enter(Duration::from_secs(1), 1, || println!("one"));
    /// sched.enter(Duration::from_secs(3), 1, || println!("three"));
    /// assert_eq!(sched.run_pending().unwrap(), Some(Duration::from_secs(1)));
    /// clock.advance(Duration::from_secs(2)); // "one" is due
    /// assert_eq!(sched.run_pending().unwrap(), Some(Duration::from_secs(1)));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(sched.run_pending().unwrap(), None); // ran "three"; empty
    /// ```
    #[doc(alias = "run_nonblocking")]
    pub fn run_pending(&self) -> Result<Option<Duration>, ActionPanicked> {
        loop {
            match self.step()? {
                Step::Empty => return Ok(None),
                Step::Ran => {}
                Step::Wait(head, _) => {
                    return Ok(Some(head.saturating_duration_since(self.now())));
                }
            }
        }
    }

    /// Runs the head event if it is due, else says what to wait for.
    fn step(&self) -> Result<Step, ActionPanicked> {
        // Read the clock before locking: a custom clock never runs under our lock.
        let now = self.now();
        let mut queue = self.inner.queue.lock();
        let Some(head) = queue.events.first_entry() else {
            return Ok(Step::Empty);
        };
        if head.key().time > now {
            // Token taken under the lock: an event entered after we unlock rings it.
            return Ok(Step::Wait(head.key().time, self.inner.wakeup.token()));
        }
        let (event, action) = head.remove_entry();
        drop(queue);
        panic::catch_unwind(AssertUnwindSafe(action))
            .map_err(|payload| ActionPanicked::new(event, payload))?;
        Ok(Step::Ran)
    }
}

enum Step {
    Empty,
    Ran,
    Wait(Instant, super::clock::WakeToken),
}

impl Default for Scheduler {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("queued", &self.len())
            .finish_non_exhaustive()
    }
}
