//! The life of a spindle thread: `start`, the bootstrap that runs the
//! closure in the new OS thread, `finish`, and every way to wait for the end
//! (`join`, `join_timeout`, `join_deadline`).
#![forbid(unsafe_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::error::{JoinError, JoinTimeoutError, SpawnError, StartError};
use super::handle::Status;
use super::{Thread, local, pid, registry, sys};
use crate::util::panic_text;

impl Thread {
    /// Starts the thread. Mirrors `Thread.start()`.
    ///
    /// On return the thread is alive (it may already have finished by the
    /// time the caller looks), has an [`ident`](Thread::ident) and is listed
    /// by [`enumerate`](super::enumerate).
    ///
    /// # Errors
    ///
    /// [`StartError::AlreadyStarted`] if it was started before (also for the
    /// main thread and foreign threads); [`StartError::Spawn`] if the OS could
    /// not create a thread, in which case it stays unstarted.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| {});
    /// t.start()?;
    /// assert!(t.ident().is_some());
    /// t.join()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start(&self) -> Result<(), StartError> {
        let ident = {
            let mut st = self.inner.state.lock();
            if !matches!(st.status, Status::New) || st.job.is_none() {
                return Err(StartError::AlreadyStarted);
            }
            let ident = registry::next_ident();
            st.status = Status::Running;
            st.ident = Some(ident);
            st.pid = Some(pid::current_pid());
            ident
        };
        registry::ensure_exit_hook();
        registry::register(self, ident);
        // The OS name must not contain NUL; spindle keeps the full name.
        let mut os = std::thread::Builder::new().name(self.inner.name.replace('\0', " "));
        if let Some(size) = self.inner.stack_size {
            os = os.stack_size(size);
        }
        let me = self.clone();
        match os.spawn(move || me.bootstrap()) {
            Ok(handle) => {
                drop(handle); // detached: joining goes through `finished`
                Ok(())
            }
            Err(e) => {
                registry::unregister(ident);
                let mut st = self.inner.state.lock();
                st.status = Status::New;
                st.ident = None;
                st.pid = None;
                self.inner.finished.notify_all();
                Err(StartError::Spawn(SpawnError::new(e)))
            }
        }
    }

    /// Runs in the new OS thread.
    fn bootstrap(self) {
        registry::set_current(&self);
        let job = {
            let mut st = self.inner.state.lock();
            st.native_id = Some(sys::native_id());
            self.inner.finished.notify_all();
            st.job.take()
        };
        // Marks the thread finished even if something below unwinds.
        let mut guard = FinishGuard {
            thread: &self,
            panic: None,
        };
        if let Some(job) = job
            && let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job))
        {
            guard.panic = Some(panic_text(&*payload).into());
        }
        // Python drops a thread's `local` values before join() returns.
        let _ = panic::catch_unwind(local::clear_current_thread);
    }

    /// Marks the thread finished (waking joiners) and unregisters it.
    /// Unregistered first, so a joiner never sees it listed afterwards.
    pub(super) fn finish(&self, panic: Option<Arc<str>>) {
        if let Some(ident) = self.ident() {
            registry::unregister(ident);
        }
        let mut st = self.inner.state.lock();
        st.status = Status::Finished(panic);
        self.inner.finished.notify_all();
    }

    /// Waits until the thread has finished. Mirrors `Thread.join()`, which
    /// any number of threads may call.
    ///
    /// # Errors
    ///
    /// [`JoinError::Panicked`] with the message if the closure panicked (Python
    /// returns normally and prints the traceback), [`JoinError::NotStarted`]
    /// before [`start`](Thread::start), [`JoinError::CurrentThread`] when a
    /// thread joins itself.
    ///
    /// # Examples
    ///
    /// ```
    /// let t = spindle::thread::Thread::new(|| panic!("boom"));
    /// t.start()?;
    /// assert_eq!(t.join().unwrap_err().panic_message(), Some("boom"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self) -> Result<(), JoinError> {
        match self.wait(None) {
            Ok(()) => Ok(()),
            Err(JoinTimeoutError::Panicked(m)) => Err(JoinError::Panicked(m)),
            Err(JoinTimeoutError::NotStarted) => Err(JoinError::NotStarted),
            Err(JoinTimeoutError::CurrentThread) => Err(JoinError::CurrentThread),
            Err(JoinTimeoutError::Timeout) => unreachable!("join without a deadline timed out"),
        }
    }

    /// Waits at most `timeout` for the thread to finish. Mirrors
    /// `Thread.join(timeout)`, but reports a timeout instead of leaving the
    /// caller to check `is_alive()`.
    ///
    /// # Errors
    ///
    /// [`JoinTimeoutError::Timeout`] if the thread is still running; the
    /// other variants as for [`join`](Thread::join).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::thread::{StopSource, Thread};
    ///
    /// let stop = StopSource::new();
    /// let token = stop.token();
    /// let t = Thread::new(move || token.wait());
    /// t.start()?;
    /// assert!(t.join_timeout(Duration::from_millis(10)).unwrap_err().is_timeout());
    /// stop.stop();
    /// t.join_timeout(Duration::from_secs(60))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<(), JoinTimeoutError> {
        self.wait(Instant::now().checked_add(timeout))
    }

    /// Waits until `deadline` at most for the thread to finish; see
    /// [`join_timeout`](Thread::join_timeout).
    ///
    /// # Errors
    ///
    /// As for [`join_timeout`](Thread::join_timeout).
    pub fn join_deadline(&self, deadline: Instant) -> Result<(), JoinTimeoutError> {
        self.wait(Some(deadline))
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<(), JoinTimeoutError> {
        if registry::is_current(self) {
            return Err(JoinTimeoutError::CurrentThread);
        }
        let mut st = self.inner.state.lock();
        loop {
            match &st.status {
                Status::New => return Err(JoinTimeoutError::NotStarted),
                Status::Finished(None) => return Ok(()),
                Status::Finished(Some(m)) => return Err(JoinTimeoutError::Panicked(m.to_string())),
                Status::Running if !st.running_here() => return Ok(()),
                Status::Running => match deadline {
                    None => self.inner.finished.wait(&mut st),
                    Some(at) => {
                        if self.inner.finished.wait_until(&mut st, at).timed_out()
                            && matches!(st.status, Status::Running)
                        {
                            return Err(JoinTimeoutError::Timeout);
                        }
                    }
                },
            }
        }
    }

    /// Waits for the end of a running thread, ignoring how it ended.
    pub(super) fn wait_finished(&self) {
        let mut st = self.inner.state.lock();
        while st.running_here() {
            self.inner.finished.wait(&mut st);
        }
    }
}

struct FinishGuard<'a> {
    thread: &'a Thread,
    panic: Option<Arc<str>>,
}

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        self.thread.finish(self.panic.take());
    }
}
