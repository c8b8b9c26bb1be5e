//! Waiting on several connections, listeners and process sentinels at once
//! (`multiprocessing.connection.wait`).
#![forbid(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Something [`wait`] can wait on: a [`Connection`](super::Connection)
/// (a message, or the peer's end, to read), a
/// [`Listener`](super::Listener) (a client to accept), or a descriptor such
/// as a [`Process::sentinel`](crate::process::Process::sentinel) (readable
/// once the process has ended).
pub trait Waitable {
    /// The descriptor that becomes readable when this object is ready.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the object can never be ready (a send-only
    /// `Connection`).
    fn wait_fd(&self) -> io::Result<BorrowedFd<'_>>;

    /// Whether it is ready without looking at the descriptor (bytes a
    /// `Connection` already read from the OS and has not handed out).
    fn ready_now(&self) -> bool {
        false
    }
}

impl Waitable for BorrowedFd<'_> {
    fn wait_fd(&self) -> io::Result<BorrowedFd<'_>> {
        Ok(*self)
    }
}

impl<T: Waitable + ?Sized> Waitable for &T {
    fn wait_fd(&self) -> io::Result<BorrowedFd<'_>> {
        (**self).wait_fd()
    }

    fn ready_now(&self) -> bool {
        (**self).ready_now()
    }
}

/// Waits until at least one of `objects` is ready and returns the indices
/// of those that are (in order) — Python's `wait(object_list)`, which
/// returns the objects themselves.
///
/// A connection is ready when a message (or part of one) or its peer's end
/// can be read, a listener when a client waits to be accepted, a sentinel
/// when its process has ended.
///
/// # Errors
///
/// `InvalidInput` for an empty list (Python's would sleep for ever) or an
/// object that can never be ready; the OS error of `poll(2)` otherwise.
pub fn wait(objects: &[&dyn Waitable]) -> io::Result<Vec<usize>> {
    wait_until(objects, None)
}

/// [`wait`] for at most `timeout` (Python's `wait(object_list, timeout)`);
/// an empty vector when none became ready in time. A zero timeout looks
/// once and returns at once.
///
/// # Errors
///
/// As [`wait`], except that an empty list just waits out the timeout.
pub fn wait_timeout(objects: &[&dyn Waitable], timeout: Duration) -> io::Result<Vec<usize>> {
    wait_until(objects, Some(Instant::now() + timeout))
}

/// [`wait`] until `deadline`; an empty vector when none became ready by
/// then.
///
/// # Errors
///
/// As [`wait_timeout`].
pub fn wait_deadline(objects: &[&dyn Waitable], deadline: Instant) -> io::Result<Vec<usize>> {
    wait_until(objects, Some(deadline))
}

/// `poll(2)`'s timeout for `deadline` (`None`: none), rounded up to the
/// millisecond so a short wait never spins at a zero timeout.
pub(crate) fn poll_timeout(deadline: Option<Instant>) -> PollTimeout {
    match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32;
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    }
}

fn wait_until(objects: &[&dyn Waitable], deadline: Option<Instant>) -> io::Result<Vec<usize>> {
    if objects.is_empty() && deadline.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "wait() on no objects and without a timeout would never return",
        ));
    }
    let fds = objects
        .iter()
        .map(|o| o.wait_fd())
        .collect::<io::Result<Vec<_>>>()?;
    let now: Vec<usize> = (0..objects.len())
        .filter(|&i| objects[i].ready_now())
        .collect();
    if !now.is_empty() {
        return Ok(now);
    }
    loop {
        let mut polls: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        match poll(&mut polls, poll_timeout(deadline)) {
            Ok(0) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Vec::new());
                }
            }
            // Readable, or hung up / in error (a read then reports it), as
            // Python's selectors count them.
            Ok(_) => {
                return Ok(polls
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
                    .map(|(i, _)| i)
                    .collect());
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}
