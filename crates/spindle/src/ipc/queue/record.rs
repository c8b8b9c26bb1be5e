//! Items too large for a ring slot travel as records of a `SOCK_SEQPACKET`
//! socket pair (the kernel keeps each record whole, so any number of
//! processes send and receive without a lock); records above [`INLINE_MAX`]
//! carry a memfd holding the payload. A record is `[tag, payload...]`.

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, recvmsg,
    sendmsg, setsockopt, socketpair, sockopt,
};

pub(super) const INLINE_MAX: usize = 100 * 1024;
pub(super) const TAG_INLINE: u8 = 0;
const TAG_MEMFD: u8 = 1;

/// The largest item a queue accepts (the memfd path reads it whole).
pub(super) const ITEM_MAX: usize = 1 << 30;

pub(super) fn sock_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    // Larger buffers hold more records in flight; the kernel caps them.
    let _ = setsockopt(&a, sockopt::SndBuf, &(1 << 20));
    let _ = setsockopt(&b, sockopt::RcvBuf, &(1 << 20));
    Ok((a, b))
}

/// Sends one record without blocking; `Ok(false)` if the socket is full.
pub(super) fn send_record(tx: RawFd, rec: &[u8]) -> io::Result<bool> {
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    if rec.len() - 1 <= INLINE_MAX {
        match sendmsg::<()>(tx, &[IoSlice::new(rec)], &[], flags, None) {
            Ok(_) => return Ok(true),
            Err(nix::errno::Errno::EAGAIN) => return Ok(false),
            Err(nix::errno::Errno::EMSGSIZE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Too large for one record: the payload goes in a memfd.
    let memfd =
        nix::sys::memfd::memfd_create("spindle-item", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    let mut file = std::fs::File::from(memfd);
    file.write_all(&rec[1..])?;
    let mut head = vec![TAG_MEMFD];
    head.extend_from_slice(&((rec.len() - 1) as u64).to_le_bytes());
    let fds = [file.as_raw_fd()];
    match sendmsg::<()>(
        tx,
        &[IoSlice::new(&head)],
        &[ControlMessage::ScmRights(&fds)],
        flags,
        None,
    ) {
        Ok(_) => Ok(true),
        Err(nix::errno::Errno::EAGAIN) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

thread_local! {
    static RECV_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Receives one record without blocking; `Ok(None)` if there is none.
pub(super) fn recv_record(rx: RawFd) -> io::Result<Option<Vec<u8>>> {
    RECV_BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < INLINE_MAX + 16 {
            buf.resize(INLINE_MAX + 16, 0);
        }
        let mut cmsg = nix::cmsg_space!([RawFd; 4]);
        let (n, fd, truncated) = {
            let mut iov = [IoSliceMut::new(&mut buf[..])];
            let msg = match recvmsg::<()>(
                rx,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut fd = None;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    for r in raw {
                        // SAFETY: the kernel installed `r` for us with this
                        // record; nothing else owns it.
                        let owned = unsafe { OwnedFd::from_raw_fd(r) };
                        fd.get_or_insert(owned);
                    }
                }
            }
            (msg.bytes, fd, msg.flags.contains(MsgFlags::MSG_TRUNC))
        };
        if truncated || n == 0 {
            return Err(io::Error::other("malformed queue record"));
        }
        match (buf[0], fd) {
            (TAG_INLINE, _) => Ok(Some(buf[1..n].to_vec())),
            (TAG_MEMFD, Some(fd)) if n == 9 => {
                let len = u64::from_le_bytes(buf[1..9].try_into().expect("8 bytes"));
                if len > ITEM_MAX as u64 {
                    return Err(io::Error::other("queue item larger than the limit"));
                }
                let len = len as usize;
                let file = std::fs::File::from(fd);
                if file.metadata()?.len() < len as u64 {
                    return Err(io::Error::other("queue item shorter than announced"));
                }
                let mut out = vec![0u8; len];
                file.read_exact_at(&mut out, 0)?;
                Ok(Some(out))
            }
            _ => Err(io::Error::other("malformed queue record")),
        }
    })
}
