//! The pool's own channel to a worker: one pipe each way, carrying the frames
//! of `ipc::frame` (header + postcard payload), with the two things a pool
//! needs and a general `Connection` does not do:
//!
//! - **batched writes**: the parent encodes any number of frames into one
//!   buffer (`push_frame`) and writes it with one `write` (`Tx::write_all`);
//! - **buffered reads**: one `read` takes every frame waiting in the pipe,
//!   and [`Rx::recv`] hands them out one by one without further system calls
//!   ([`Rx::has_frame`] says whether one is already buffered).
//!
//! Beside the pipes, a socket pair carries the sealed memfds of large
//! arguments and results (`ipc::sealed`), one descriptor per one-byte
//! message, sent before the frame that announces them: the frame says how
//! many follow, and the reader takes them in order.
//!
//! End-of-file works as on any pipe: when the worker dies, the kernel closes
//! its write end and the parent reads `Eof` (its own copies of the worker's
//! ends are closed once the worker has started).
#![forbid(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ipc::fdpass;
use crate::ipc::frame::{self, DEFAULT_MAX_FRAME, FrameReader, FrameWriter, HEADER_LEN, Kind};

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum LinkError {
    /// The peer closed its end (or died) between frames.
    Eof,
    /// A broken stream: bad header, a frame over the limit, a payload that
    /// does not decode, or an I/O error. The message shows in `Debug`.
    Garbled(#[allow(dead_code)] String),
}

/// The sending end (a pipe's write end).
#[derive(Debug)]
pub(crate) struct Tx {
    file: File,
    sock: UnixStream,
}

impl Tx {
    /// Writes all of `buf` (whole frames from [`push_frame`]), retrying
    /// short writes and interruptions. Fails once the reader is gone
    /// (`EPIPE`; SIGPIPE is ignored in every spindle process).
    pub(crate) fn write_all(&self, buf: &[u8]) -> io::Result<()> {
        FrameWriter::new(&self.file).write_encoded(buf)
    }

    /// Sends memfds on the link's socket, in order (before the frame that
    /// announces them).
    pub(crate) fn send_fds(&self, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        fdpass::send_fds(&self.sock, fds)
    }

    /// How many bytes the pipe holds before a write blocks.
    pub(crate) fn capacity(&self) -> usize {
        fcntl(self.file.as_fd(), FcntlArg::F_GETPIPE_SZ)
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(4096)
    }
}

/// The receiving end (a pipe's read end) and its buffer.
#[derive(Debug)]
pub(crate) struct Rx {
    frames: FrameReader<File>,
    sock: UnixStream,
}

/// Size of one `read`: enough for many small frames.
const READ_CHUNK: usize = 64 * 1024;

impl Rx {
    fn new(fd: OwnedFd, sock: UnixStream) -> Rx {
        Rx {
            frames: FrameReader::new(File::from(fd), READ_CHUNK),
            sock,
        }
    }

    /// The length of the complete frame at the front of the buffer, if any
    /// (header and payload); an error if its header is bad.
    fn complete(&self) -> Result<Option<usize>, LinkError> {
        self.check_header()?;
        self.frames.whole_frame().map_err(garbled)
    }

    /// Refuses a buffered header of another kind or over the limit: the
    /// link is broken then (its peer is this program, so it never happens
    /// unless memory or the pipe is corrupt).
    fn check_header(&self) -> Result<(), LinkError> {
        match self.frames.peek_header() {
            Some(Ok((Kind::Data, len))) if len > DEFAULT_MAX_FRAME => Err(LinkError::Garbled(
                format!("a frame of {len} bytes (limit {DEFAULT_MAX_FRAME})"),
            )),
            Some(Ok((Kind::Data, _))) | None => Ok(()),
            Some(Ok((kind, _))) => Err(LinkError::Garbled(format!("unexpected {kind:?} frame"))),
            Some(Err(e)) => Err(garbled(e)),
        }
    }

    /// The next memfd on the link's socket (announced by the frame just
    /// received).
    pub(crate) fn recv_fd(&self) -> io::Result<OwnedFd> {
        fdpass::recv_one_fd(&self.sock)
    }

    /// Whether a whole frame is already buffered: [`recv`](Self::recv) will
    /// not make a system call.
    pub(crate) fn has_frame(&self) -> bool {
        matches!(self.complete(), Ok(Some(_)))
    }

    /// Reads more bytes (at least one, blocking); `Eof` at end of file.
    fn fill(&mut self) -> Result<(), LinkError> {
        // Room for the whole frame whose header is buffered.
        let need = match self.frames.peek_header() {
            Some(Ok((_, len))) => HEADER_LEN + len,
            _ => HEADER_LEN,
        };
        match self.frames.fill_to(need) {
            Ok(0) if self.frames.avail() == 0 => Err(LinkError::Eof),
            Ok(0) => Err(LinkError::Garbled(
                "stream ended in the middle of a frame".into(),
            )),
            Ok(_) => Ok(()),
            Err(e) => Err(LinkError::Garbled(e.to_string())),
        }
    }

    /// Polls (without sleeping) up to `spin` for something to read; true if
    /// it came.
    fn spin_until_readable(&self, spin: Duration) -> bool {
        let until = Instant::now() + spin;
        loop {
            let mut fds = [PollFd::new(
                self.frames.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            if let Ok(n) = poll(&mut fds, PollTimeout::ZERO)
                && n > 0
            {
                return true;
            }
            if Instant::now() >= until {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// The next message, reading from the pipe only when no whole frame is
    /// buffered.
    pub(crate) fn recv<T: DeserializeOwned>(&mut self) -> Result<T, LinkError> {
        self.recv_spin(Duration::ZERO)
    }

    /// [`recv`](Self::recv), but first polling up to `spin` before sleeping
    /// in `read` (a sleeping thread on an idle CPU can take tens of
    /// microseconds to wake, far longer than a tiny task).
    pub(crate) fn recv_spin<T: DeserializeOwned>(
        &mut self,
        spin: Duration,
    ) -> Result<T, LinkError> {
        let len = loop {
            if let Some(len) = self.complete()? {
                break len;
            }
            if !spin.is_zero() {
                self.spin_until_readable(spin);
            }
            self.fill()?;
        };
        let frame = self.frames.take_whole(len).expect("a whole frame");
        let value = postcard::from_bytes(&frame[HEADER_LEN..])
            .map_err(|e| LinkError::Garbled(e.to_string()));
        // Give back the room a large frame needed.
        self.frames.shrink(4 * READ_CHUNK);
        value
    }
}

fn garbled(e: frame::FrameError) -> LinkError {
    LinkError::Garbled(format!("{e:?}"))
}

/// Appends one frame carrying `value` to `out`.
pub(crate) fn push_frame<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), String> {
    // On error the encoder consumed `out`: nothing to restore, the caller
    // never relies on it after an error.
    frame::push_value(out, Kind::Data, value).map_err(|e| e.to_string())
}

/// The parent's ends of a new link and the worker's ends (to pass as the
/// worker task's argument).
pub(crate) fn pair() -> io::Result<(Tx, Rx, WorkerEnds)> {
    let (to_worker_r, to_worker_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (from_worker_r, from_worker_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    // `UnixStream::pair` is close-on-exec.
    let (ours, theirs) = UnixStream::pair()?;
    Ok((
        Tx {
            file: File::from(to_worker_w),
            sock: ours.try_clone()?,
        },
        Rx::new(from_worker_r, ours),
        WorkerEnds {
            rx: to_worker_r,
            tx: from_worker_w,
            sock: OwnedFd::from(theirs),
        },
    ))
}

/// The worker's ends of a link: they travel as the worker task's argument
/// (their descriptors beside the bootstrap message, as a `Connection`'s).
#[derive(Debug)]
pub(crate) struct WorkerEnds {
    rx: OwnedFd,
    tx: OwnedFd,
    sock: OwnedFd,
}

impl WorkerEnds {
    /// Opens the worker's side.
    pub(crate) fn open(self) -> io::Result<(Rx, Tx)> {
        let sock = UnixStream::from(self.sock);
        Ok((
            Rx::new(self.rx, sock.try_clone()?),
            Tx {
                file: File::from(self.tx),
                sock,
            },
        ))
    }
}

impl Serialize for WorkerEnds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rx = fdpass::export(self.rx.as_fd()).map_err(serde::ser::Error::custom)?;
        let tx = fdpass::export(self.tx.as_fd()).map_err(serde::ser::Error::custom)?;
        let sock = fdpass::export(self.sock.as_fd()).map_err(serde::ser::Error::custom)?;
        (rx, tx, sock).serialize(s)
    }
}

impl<'de> Deserialize<'de> for WorkerEnds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (rx, tx, sock) = <(u32, u32, u32)>::deserialize(d)?;
        Ok(WorkerEnds {
            rx: fdpass::import(rx).map_err(serde::de::Error::custom)?,
            tx: fdpass::import(tx).map_err(serde::de::Error::custom)?,
            sock: fdpass::import(sock).map_err(serde::de::Error::custom)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_written_in_one_batch_are_read_one_by_one() {
        let (tx, _, ends) = pair().unwrap();
        let (mut rx, _) = ends.open().unwrap();
        let mut out = Vec::new();
        for i in 0..100u32 {
            push_frame(&mut out, &(i, "x".repeat(i as usize))).unwrap();
        }
        tx.write_all(&out).unwrap();
        for i in 0..100u32 {
            let (n, s): (u32, String) = rx.recv().unwrap();
            assert_eq!((n, s.len()), (i, i as usize));
        }
        assert!(!rx.has_frame());
        drop(tx);
        assert!(matches!(rx.recv::<u32>(), Err(LinkError::Eof)));
    }

    #[test]
    fn a_frame_larger_than_the_buffer_arrives_whole() {
        let (tx, _, ends) = pair().unwrap();
        let (mut rx, _) = ends.open().unwrap();
        let big = vec![7u8; 5 * READ_CHUNK + 3];
        let t = std::thread::spawn(move || {
            let mut out = Vec::new();
            push_frame(&mut out, &1u8).unwrap();
            push_frame(&mut out, &serde_bytes_like(&big)).unwrap();
            push_frame(&mut out, &2u8).unwrap();
            tx.write_all(&out).unwrap();
        });
        assert_eq!(rx.recv::<u8>().unwrap(), 1);
        let got: Vec<u8> = rx.recv().unwrap();
        assert_eq!(got.len(), 5 * READ_CHUNK + 3);
        assert_eq!(rx.recv::<u8>().unwrap(), 2);
        t.join().unwrap();
    }

    fn serde_bytes_like(v: &[u8]) -> Vec<u8> {
        v.to_vec()
    }

    #[test]
    fn a_bad_header_and_a_truncated_frame_are_garbled_not_eof() {
        let (tx, _, ends) = pair().unwrap();
        let (mut rx, _) = ends.open().unwrap();
        tx.write_all(b"XXXXXXXXXXXX").unwrap();
        assert!(matches!(rx.recv::<u8>(), Err(LinkError::Garbled(_))));

        let (tx, _, ends) = pair().unwrap();
        let (mut rx, _) = ends.open().unwrap();
        let mut out = Vec::new();
        push_frame(&mut out, &"hello").unwrap();
        tx.write_all(&out[..out.len() - 2]).unwrap();
        drop(tx);
        assert!(matches!(rx.recv::<String>(), Err(LinkError::Garbled(_))));
    }
}
