//! Challenge-response authentication of a [`Connection`]
//! (`multiprocessing.connection.deliver_challenge` / `answer_challenge`).
//!
//! Both ends hold the same secret key. One end *delivers* a challenge, the
//! other *answers* it, and a connection is authenticated in both directions
//! when each end has done both (the accepting end delivers first, the
//! connecting end answers first, as in Python's `Listener` and `Client`).
//!
//! One exchange, in three byte messages (each a `send_bytes` frame):
//!
//! 1. deliverer → answerer: `#SPINDLE-CHALLENGE#{hmac-sha256}` followed by
//!    a 32-byte nonce from the operating system's random source;
//! 2. answerer → deliverer: `{hmac-sha256}` followed by
//!    HMAC-SHA256(key, `spindle-answer` ‖ nonce), 32 bytes;
//! 3. deliverer → answerer: `#WELCOME#`, or `#FAILURE#` and an error.
//!
//! The MAC is compared in constant time. Nothing else is accepted: no other
//! digest (Python accepted MD5 until 3.12), no message over
//! [`MAX_AUTH_MESSAGE`] bytes, no downgrade. A key shorter than
//! [`MIN_AUTHKEY`] bytes is refused before anything is sent (a challenge
//! and its answer over a short key can be brute-forced offline). A nonce
//! comes from the OS only (`getrandom`); without one the exchange fails
//! with [`AuthenticationError::Random`] rather than use a guessable value.
//!
//! This proves both ends know the key; it does not encrypt or protect what
//! follows (use it on a private socket, or add TLS).

use std::fmt;
use std::time::Instant;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{Connection, ConnectionError};

/// The shortest key [`deliver_challenge`] and [`answer_challenge`] accept:
/// 16 bytes. (A process's own [`authkey`](crate::process::current_process)
/// is 32 random bytes.)
pub const MIN_AUTHKEY: usize = 16;

/// The longest message either side reads during the exchange: 256 bytes.
/// A longer one ends it with [`AuthenticationError::Protocol`], unread.
pub const MAX_AUTH_MESSAGE: usize = 256;

const CHALLENGE: &[u8] = b"#SPINDLE-CHALLENGE#";
const DIGEST: &[u8] = b"{hmac-sha256}";
const WELCOME: &[u8] = b"#WELCOME#";
const FAILURE: &[u8] = b"#FAILURE#";
const NONCE_LEN: usize = 32;
const MAC_LEN: usize = 32;
const ANSWER_DOMAIN: &[u8] = b"spindle-answer";

/// Why an authentication exchange failed (Python raises
/// `AuthenticationError` for the first two, `EOFError`/`OSError` for the
/// connection's own failures).
#[derive(Debug)]
#[non_exhaustive]
pub enum AuthenticationError {
    /// The peer's answer to our challenge was wrong: it does not hold our
    /// key (we told it `#FAILURE#`).
    WrongAnswer,
    /// The peer refused our answer to its challenge: we do not hold its key.
    Rejected,
    /// The peer sent something that is not this protocol: another digest
    /// (such as MD5), a malformed or oversized message, or an unknown
    /// verdict. Nothing of it was trusted.
    Protocol(String),
    /// The key is shorter than [`MIN_AUTHKEY`] bytes; nothing was sent.
    KeyTooShort {
        /// The key's length.
        len: usize,
    },
    /// The operating system gave no random bytes for the nonce.
    Random(String),
    /// The deadline passed before the peer's message arrived.
    Timeout,
    /// The connection failed (the peer closed it, say).
    Connection(ConnectionError),
}

impl AuthenticationError {
    /// Whether the peer (or we) do not hold the right key: the two
    /// outcomes Python reports as `AuthenticationError` for a wrong key.
    pub fn is_wrong_key(&self) -> bool {
        matches!(
            self,
            AuthenticationError::WrongAnswer | AuthenticationError::Rejected
        )
    }
}

impl fmt::Display for AuthenticationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthenticationError::WrongAnswer => {
                f.write_str("digest received was wrong (the peer does not hold this authkey)")
            }
            AuthenticationError::Rejected => {
                f.write_str("digest sent was rejected (the peer holds another authkey)")
            }
            AuthenticationError::Protocol(m) => write!(f, "authentication protocol error: {m}"),
            AuthenticationError::KeyTooShort { len } => write!(
                f,
                "an authkey of {len} bytes is too short: at least {MIN_AUTHKEY} are required"
            ),
            AuthenticationError::Random(m) => write!(
                f,
                "no random bytes from the operating system for the challenge: {m}"
            ),
            AuthenticationError::Timeout => {
                f.write_str("the peer did not answer in time during authentication")
            }
            AuthenticationError::Connection(e) => {
                write!(f, "the connection failed during authentication: {e}")
            }
        }
    }
}

impl std::error::Error for AuthenticationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AuthenticationError::Connection(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConnectionError> for AuthenticationError {
    fn from(e: ConnectionError) -> Self {
        match e {
            ConnectionError::TooLarge { .. } => AuthenticationError::Protocol(format!(
                "a message over {MAX_AUTH_MESSAGE} bytes during authentication"
            )),
            e => AuthenticationError::Connection(e),
        }
    }
}

/// Sends a challenge and checks the peer's answer (Python's
/// `deliver_challenge(connection, authkey)`); tells the peer the verdict.
///
/// # Errors
///
/// [`AuthenticationError::WrongAnswer`] if the peer does not hold `authkey`; the
/// others as [`AuthenticationError`] says.
pub fn deliver_challenge(conn: &Connection, authkey: &[u8]) -> Result<(), AuthenticationError> {
    deliver(conn, authkey, None)
}

/// [`deliver_challenge`], failing with [`AuthenticationError::Timeout`] if the peer's
/// answer has not come by `deadline` (bounds what a silent peer costs).
///
/// # Errors
///
/// As [`deliver_challenge`], and [`AuthenticationError::Timeout`].
pub fn deliver_challenge_deadline(
    conn: &Connection,
    authkey: &[u8],
    deadline: Instant,
) -> Result<(), AuthenticationError> {
    deliver(conn, authkey, Some(deadline))
}

/// Answers the peer's challenge and reads its verdict (Python's
/// `answer_challenge(connection, authkey)`).
///
/// # Errors
///
/// [`AuthenticationError::Rejected`] if the peer does not accept `authkey`;
/// [`AuthenticationError::Protocol`] for a challenge of another digest (MD5
/// included) or shape; the others as [`AuthenticationError`] says.
pub fn answer_challenge(conn: &Connection, authkey: &[u8]) -> Result<(), AuthenticationError> {
    answer(conn, authkey, None)
}

/// [`answer_challenge`], failing with [`AuthenticationError::Timeout`] if the
/// challenge or the verdict has not come by `deadline`.
///
/// # Errors
///
/// As [`answer_challenge`], and [`AuthenticationError::Timeout`].
pub fn answer_challenge_deadline(
    conn: &Connection,
    authkey: &[u8],
    deadline: Instant,
) -> Result<(), AuthenticationError> {
    answer(conn, authkey, Some(deadline))
}

fn check_key(authkey: &[u8]) -> Result<(), AuthenticationError> {
    if authkey.len() < MIN_AUTHKEY {
        return Err(AuthenticationError::KeyTooShort { len: authkey.len() });
    }
    Ok(())
}

fn mac(authkey: &[u8]) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(authkey).expect("HMAC takes a key of any length");
    m.update(ANSWER_DOMAIN);
    m
}

/// One message of at most [`MAX_AUTH_MESSAGE`] bytes, by `deadline`.
fn recv(conn: &Connection, deadline: Option<Instant>) -> Result<Vec<u8>, AuthenticationError> {
    if let Some(d) = deadline
        && !conn.poll_deadline(d)?
    {
        return Err(AuthenticationError::Timeout);
    }
    Ok(conn.recv_bytes_max(MAX_AUTH_MESSAGE)?)
}

fn deliver(
    conn: &Connection,
    authkey: &[u8],
    deadline: Option<Instant>,
) -> Result<(), AuthenticationError> {
    check_key(authkey)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| AuthenticationError::Random(e.to_string()))?;
    conn.send_bytes(&[CHALLENGE, DIGEST, &nonce].concat())?;
    let reply = recv(conn, deadline)?;
    let ok = match reply.strip_prefix(DIGEST) {
        Some(tag) if tag.len() == MAC_LEN => {
            let mut m = mac(authkey);
            m.update(&nonce);
            m.verify_slice(tag).is_ok()
        }
        _ => false,
    };
    if ok {
        conn.send_bytes(WELCOME)?;
        Ok(())
    } else {
        // Best effort: the peer learns the verdict if it still listens.
        let _ = conn.send_bytes(FAILURE);
        Err(AuthenticationError::WrongAnswer)
    }
}

fn answer(
    conn: &Connection,
    authkey: &[u8],
    deadline: Option<Instant>,
) -> Result<(), AuthenticationError> {
    check_key(authkey)?;
    let msg = recv(conn, deadline)?;
    let Some(rest) = msg.strip_prefix(CHALLENGE) else {
        return Err(AuthenticationError::Protocol(
            "the peer's first message is not a spindle challenge".into(),
        ));
    };
    let Some(nonce) = rest.strip_prefix(DIGEST) else {
        return Err(AuthenticationError::Protocol(format!(
            "the challenge asks for a digest other than HMAC-SHA256 ({:?}); none other is answered",
            String::from_utf8_lossy(&rest[..rest.len().min(16)])
        )));
    };
    if nonce.len() != NONCE_LEN {
        return Err(AuthenticationError::Protocol(format!(
            "a challenge nonce of {} bytes (expected {NONCE_LEN})",
            nonce.len()
        )));
    }
    let mut m = mac(authkey);
    m.update(nonce);
    let tag = m.finalize().into_bytes();
    conn.send_bytes(&[DIGEST, &tag[..]].concat())?;
    let verdict = recv(conn, deadline)?;
    match verdict.as_slice() {
        WELCOME => Ok(()),
        FAILURE => Err(AuthenticationError::Rejected),
        other => Err(AuthenticationError::Protocol(format!(
            "an unknown verdict {:?}",
            String::from_utf8_lossy(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::ipc::Pipe;

    const KEY: &[u8] = b"0123456789abcdef-a-test-key";

    /// Runs `left` and `right` on the two ends of a duplex pipe at once.
    fn both<A: Send, B: Send>(
        left: impl FnOnce(&Connection) -> A + Send,
        right: impl FnOnce(&Connection) -> B + Send,
    ) -> (A, B) {
        let (a, b) = Pipe(true).unwrap();
        thread::scope(|s| {
            let h = s.spawn(|| right(&b));
            let l = left(&a);
            (l, h.join().unwrap())
        })
    }

    #[test]
    fn the_same_key_authenticates_both_directions() {
        let (l, r) = both(
            |c| deliver_challenge(c, KEY).and_then(|()| answer_challenge(c, KEY)),
            |c| answer_challenge(c, KEY).and_then(|()| deliver_challenge(c, KEY)),
        );
        l.unwrap();
        r.unwrap();
    }

    #[test]
    fn a_wrong_key_is_refused_on_both_sides() {
        let (l, r) = both(
            |c| deliver_challenge(c, KEY),
            |c| answer_challenge(c, b"another-key-of-16-bytes-or-more"),
        );
        assert!(matches!(l, Err(AuthenticationError::WrongAnswer)), "{l:?}");
        assert!(matches!(r, Err(AuthenticationError::Rejected)), "{r:?}");
        assert!(l.unwrap_err().is_wrong_key() && r.unwrap_err().is_wrong_key());
    }

    #[test]
    fn a_short_key_is_refused_before_anything_is_sent() {
        let (a, b) = Pipe(true).unwrap();
        for f in [deliver_challenge, answer_challenge] {
            let e = f(&a, b"abc").unwrap_err();
            assert!(
                matches!(e, AuthenticationError::KeyTooShort { len: 3 }),
                "{e:?}"
            );
        }
        assert!(!b.poll().unwrap(), "nothing reached the peer");
    }

    /// Python before 3.12 answered an MD5 challenge (`{md5}` or no tag):
    /// spindle answers none but its own digest.
    #[test]
    fn an_md5_or_untagged_challenge_is_not_answered() {
        for challenge in [
            [CHALLENGE, b"{md5}", &[7u8; 20]].concat(),
            [CHALLENGE, &[7u8; 20]].concat(),
            b"#CHALLENGE#{sha256}0123456789012345678901234567890123456789".to_vec(),
        ] {
            let (l, r) = both(
                |c| {
                    c.send_bytes(&challenge).unwrap();
                    c.poll_timeout(Duration::from_millis(200)).unwrap()
                },
                |c| answer_challenge(c, KEY),
            );
            assert!(!l, "no answer was sent");
            assert!(matches!(r, Err(AuthenticationError::Protocol(_))), "{r:?}");
        }
    }

    /// A peer that replies with an MD5-sized digest, a bare digest or junk
    /// is refused and told so.
    #[test]
    fn a_malformed_answer_is_a_wrong_answer() {
        for reply in [
            [DIGEST, &[0u8; 16]].concat(),
            vec![0u8; MAC_LEN],
            b"{md5}0123456789abcdef".to_vec(),
        ] {
            let (l, r) = both(
                |c| deliver_challenge(c, KEY),
                |c| {
                    c.recv_bytes().unwrap();
                    c.send_bytes(&reply).unwrap();
                    c.recv_bytes().unwrap()
                },
            );
            assert!(matches!(l, Err(AuthenticationError::WrongAnswer)), "{l:?}");
            assert_eq!(r, FAILURE);
        }
    }

    #[test]
    fn an_oversized_message_is_a_protocol_error() {
        let (l, r) = both(
            |c| deliver_challenge(c, KEY),
            |c| {
                c.recv_bytes().unwrap();
                c.send_bytes(&[0u8; MAX_AUTH_MESSAGE + 1]).unwrap();
            },
        );
        assert!(matches!(l, Err(AuthenticationError::Protocol(_))), "{l:?}");
        let () = r;
    }

    #[test]
    fn an_unknown_verdict_is_a_protocol_error() {
        let (l, r) = both(
            |c| {
                c.send_bytes(&[CHALLENGE, DIGEST, &[9u8; NONCE_LEN]].concat())
                    .unwrap();
                let mut m = mac(KEY);
                m.update(&[9u8; NONCE_LEN]);
                let answer = c.recv_bytes().unwrap();
                assert_eq!(answer, [DIGEST, &m.finalize().into_bytes()[..]].concat());
                c.send_bytes(b"#MAYBE#").unwrap();
            },
            |c| answer_challenge(c, KEY),
        );
        let () = l;
        assert!(matches!(r, Err(AuthenticationError::Protocol(_))), "{r:?}");
    }

    #[test]
    fn a_silent_peer_times_out() {
        let (a, _b) = Pipe(true).unwrap();
        let t = Instant::now();
        let e = answer_challenge_deadline(&a, KEY, t + Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, AuthenticationError::Timeout), "{e:?}");
        assert!(t.elapsed() >= Duration::from_millis(50));
        let e = deliver_challenge_deadline(&a, KEY, Instant::now() + Duration::from_millis(50))
            .unwrap_err();
        assert!(matches!(e, AuthenticationError::Timeout), "{e:?}");
    }

    #[test]
    fn a_closed_peer_is_a_connection_error() {
        let (a, b) = Pipe(true).unwrap();
        drop(b);
        let e = answer_challenge(&a, KEY).unwrap_err();
        assert!(
            matches!(e, AuthenticationError::Connection(ref c) if c.is_eof()),
            "{e:?}"
        );
    }

    /// Each challenge is fresh: two deliveries never send the same nonce.
    #[test]
    fn nonces_do_not_repeat() {
        let (a, b) = Pipe(true).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let h = thread::scope(|s| {
                let h = s.spawn(|| deliver_challenge_deadline(&a, KEY, Instant::now()));
                let ch = b.recv_bytes().unwrap();
                let _ = h.join();
                ch
            });
            assert!(seen.insert(h), "a nonce came twice");
        }
    }
}
