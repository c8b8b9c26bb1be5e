//! Passing file descriptors to a child process inside serde values.
//!
//! A [`Connection`](super::Connection) given as a task argument cannot be
//! encoded as bytes: its file descriptor must travel beside the bytes. While a
//! `TaskCall` encodes its arguments, [`collect`] is active and each
//! `Connection::serialize` duplicates its descriptor into the collection and
//! writes only its index. The descriptors then travel with the bootstrap frame
//! (`SCM_RIGHTS`, or the memory copy of `fork`), and in the child
//! `Connection::deserialize` takes them back by index inside [`provide`].

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

/// Most descriptors one bootstrap may carry (the kernel allows 253).
pub(crate) const MAX_FDS: usize = 64;

thread_local! {
    static OUT: RefCell<Option<Vec<OwnedFd>>> = const { RefCell::new(None) };
    static IN: RefCell<Option<Vec<Option<OwnedFd>>>> = const { RefCell::new(None) };
}

/// Runs `f` with descriptor collection on; returns its value and the collected
/// (duplicated, close-on-exec) descriptors.
pub(crate) fn collect<R>(f: impl FnOnce() -> R) -> (R, Vec<OwnedFd>) {
    let prev = OUT.with(|o| o.borrow_mut().replace(Vec::new()));
    let r = f();
    let fds = OUT
        .with(|o| std::mem::replace(&mut *o.borrow_mut(), prev))
        .unwrap_or_default();
    (r, fds)
}

/// Duplicates `fd` into the active collection and returns its index.
pub(crate) fn export(fd: BorrowedFd<'_>) -> Result<u32, String> {
    OUT.with(|o| {
        let mut o = o.borrow_mut();
        let Some(list) = o.as_mut() else {
            return Err(
                "a Connection can only be encoded as an argument of a spindle \
                        task call (spindle::process::TaskCall)"
                    .to_string(),
            );
        };
        if list.len() >= MAX_FDS {
            return Err(format!(
                "a task call can carry at most {MAX_FDS} descriptors (a Connection takes two or three)"
            ));
        }
        let dup = fd.try_clone_to_owned().map_err(|e| e.to_string())?;
        list.push(dup);
        Ok((list.len() - 1) as u32)
    })
}

/// Runs `f` with `fds` available to [`import`]; unclaimed ones are closed.
pub(crate) fn provide<R>(fds: Vec<OwnedFd>, f: impl FnOnce() -> R) -> R {
    let prev = IN.with(|i| i.borrow_mut().replace(fds.into_iter().map(Some).collect()));
    let r = f();
    IN.with(|i| *i.borrow_mut() = prev);
    r
}

/// Takes the descriptor at `index` of the provided set.
pub(crate) fn import(index: u32) -> Result<OwnedFd, String> {
    IN.with(|i| {
        let mut i = i.borrow_mut();
        let list = i
            .as_mut()
            .ok_or("no descriptors were passed with this message")?;
        list.get_mut(index as usize)
            .and_then(Option::take)
            .ok_or_else(|| format!("descriptor #{index} missing or already taken"))
    })
}

/// Writes `data` to `sock`, attaching `fds` to its first byte.
pub(crate) fn send_with_fds(sock: &UnixStream, data: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
    if fds.is_empty() || data.is_empty() {
        return (&*sock).write_all(data);
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    send_with_raw(sock.as_fd(), data, &raw)
}

/// Fills `buf` exactly from `sock`, collecting descriptors that arrive with it
/// (close-on-exec).
pub(crate) fn recv_exact_with_fds(sock: &UnixStream, buf: &mut [u8]) -> io::Result<Vec<OwnedFd>> {
    let mut fds = Vec::new();
    let mut got = 0;
    while got < buf.len() {
        match recv_some_with_fds(sock.as_fd(), &mut buf[got..], &mut fds)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => got += n,
        }
    }
    Ok(fds)
}

/// Sends each of `fds` on `sock` as its own one-byte message carrying it
/// (`SCM_RIGHTS`), in order: the receiver takes them one by one with
/// [`recv_one_fd`].
pub(crate) fn send_fds(sock: &UnixStream, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    for fd in fds {
        send_with_raw(sock.as_fd(), &[0u8], &[fd.as_raw_fd()])?;
    }
    Ok(())
}

/// Writes `data` to the stream socket `sock` (any descriptor of one: a
/// `Connection`'s write side is a `File`), attaching `pass` to its first
/// byte; the rest of `data` follows with plain writes.
pub(crate) fn send_with_fd(
    sock: BorrowedFd<'_>,
    data: &[u8],
    pass: BorrowedFd<'_>,
) -> io::Result<()> {
    send_with_raw(sock, data, &[pass.as_raw_fd()])
}

/// [`send_with_fd`] for any number of descriptors (`data` not empty).
fn send_with_raw(sock: BorrowedFd<'_>, data: &[u8], raw: &[RawFd]) -> io::Result<()> {
    let cmsg = [ControlMessage::ScmRights(raw)];
    let mut sent = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(data)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    };
    while sent < data.len() {
        match nix::sys::socket::send(sock.as_raw_fd(), &data[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(())
}

/// One `recvmsg` on the stream socket `sock` into `buf`: the bytes read (0
/// at end of file); descriptors that came with them (close-on-exec) are
/// appended to `fds`. The kernel hands a message's descriptors to the read
/// that takes its first byte, and ends that read with the message.
pub(crate) fn recv_some_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    let mut cmsg_space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        };
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for fd in raw {
                    // SAFETY: the kernel just installed `fd` in our table
                    // for this message; nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        return Ok(msg.bytes);
    }
}

/// Whether `fd` is a Unix-domain socket (one that can carry descriptors).
pub(crate) fn is_unix_socket(fd: BorrowedFd<'_>) -> bool {
    use nix::sys::socket::{AddressFamily, SockaddrLike, SockaddrStorage, getsockname};
    getsockname::<SockaddrStorage>(fd.as_raw_fd())
        .is_ok_and(|a| a.family() == Some(AddressFamily::Unix))
}

/// Receives the next descriptor [`send_fds`] sent on `sock`.
pub(crate) fn recv_one_fd(sock: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut fds = recv_exact_with_fds(sock, &mut byte)?;
    match (fds.len(), fds.pop()) {
        (1, Some(fd)) => Ok(fd),
        (n, _) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected one descriptor, {n} came"),
        )),
    }
}
