//! [`SharedBytes`]: a byte string that a large pool result (or task
//! argument) can share with the sealed memory it arrived in, instead of
//! being copied out of it.
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use super::sealed::Mapped;

thread_local! {
    /// The sealed mapping whose bytes this thread is decoding now (set by
    /// [`decoding_from`]), so a [`SharedBytes`] decoded from a slice inside
    /// it can keep the mapping instead of copying.
    static SOURCE: RefCell<Option<Arc<Mapped>>> = const { RefCell::new(None) };
}

/// Runs `f` (a decode whose input lies in `map`) with `map` offered to every
/// [`SharedBytes`] it decodes; the previous source is back afterwards, even
/// if `f` panics.
pub(crate) fn decoding_from<R>(map: &Arc<Mapped>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Mapped>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = prev);
        }
    }
    let _restore = Restore(SOURCE.with(|s| s.borrow_mut().replace(map.clone())));
    f()
}

/// The offset of `bytes` in the mapping being decoded, if it lies inside.
fn in_source(bytes: &[u8]) -> Option<(Arc<Mapped>, usize)> {
    SOURCE.with(|s| {
        let s = s.borrow();
        let map = s.as_ref()?;
        let base = map.as_ptr() as usize;
        let at = (bytes.as_ptr() as usize).checked_sub(base)?;
        let end = at.checked_add(bytes.len())?;
        (end <= map.len() && !bytes.is_empty()).then(|| (map.clone(), at))
    })
}

#[derive(Clone)]
enum Repr {
    Owned(Arc<Vec<u8>>),
    Mapped {
        map: Arc<Mapped>,
        start: usize,
        len: usize,
    },
}

/// An immutable byte string, cheap to clone, that can be received from a
/// pool worker without a copy.
///
/// As a value it is a `Vec<u8>` that cannot change: it derefs to `[u8]`,
/// compares and hashes by content, and encodes as a serde byte string (the
/// same bytes as `serde_bytes::ByteBuf` or `Vec<u8>` under `serde_bytes`,
/// so either side of a task may use the other type). Cloning shares the
/// bytes (an `Arc`).
///
/// **Zero copy.** A pool task's result of 256 KiB or more travels in a
/// sealed memfd that the parent maps read-only (`process/pool/README.md`).
/// Decoding a result field of type `SharedBytes` from that mapping keeps a
/// reference to the mapping and the field's range, instead of copying the
/// bytes into a new buffer: [`is_mapped`](Self::is_mapped) is then `true`.
/// The same holds for a task's arguments of 256 KiB or more, decoded by a
/// pool worker or a spawned [`Process`](crate::process::Process) child from
/// their sealed memfd. In every other case (a small result that came in the
/// pipe, a value decoded from any other source: postcard, MessagePack,
/// JSON, a `From<Vec<u8>>`) the bytes are owned, as a `Vec<u8>` would be.
///
/// The mapping stays mapped while any `SharedBytes` (or clone) refers to
/// it, and it holds *every* result of the batch it came in (one memfd per
/// batch of results from one worker): keep a small part with
/// `to_vec()` (a slice's, through `Deref`) and drop the rest to give the memory back.
/// Python's `Pool` always copies a result (it is unpickled into a new
/// `bytes`); see `docs/PYTHON.md`.
///
/// ```
/// use spindle::ipc::SharedBytes;
/// use spindle::process::Pool;
///
/// #[spindle::task]
/// fn fill(n: u64) -> SharedBytes {
///     SharedBytes::from(vec![7u8; n as usize])
/// }
///
/// let pool = Pool::new(1)?;
/// let big = pool.apply(fill::call(4 << 20)).unwrap();
/// assert_eq!(big.len(), 4 << 20);
/// assert!(big.is_mapped()); // read in place from the worker's memfd
/// let small = pool.apply(fill::call(10)).unwrap();
/// assert!(!small.is_mapped()); // came through the pipe: owned
/// drop(pool);
/// assert!(big.iter().all(|&b| b == 7)); // still readable
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
#[derive(Clone)]
pub struct SharedBytes(Repr);

impl SharedBytes {
    /// An empty byte string.
    pub fn new() -> SharedBytes {
        SharedBytes::from(Vec::new())
    }

    /// Whether the bytes are read in place from a sealed shared-memory
    /// mapping (a large result or argument received without a copy) rather
    /// than owned by this value.
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }

    /// The bytes as a `Vec<u8>`: without a copy if they are owned and not
    /// shared with a clone, else copied.
    pub fn into_vec(self) -> Vec<u8> {
        match self.0 {
            Repr::Owned(v) => Arc::try_unwrap(v).unwrap_or_else(|v| (*v).clone()),
            Repr::Mapped { .. } => self.to_vec(),
        }
    }
}

impl Default for SharedBytes {
    fn default() -> SharedBytes {
        SharedBytes::new()
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::borrow::Borrow<[u8]> for SharedBytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> SharedBytes {
        SharedBytes(Repr::Owned(Arc::new(v)))
    }
}

impl From<&[u8]> for SharedBytes {
    fn from(v: &[u8]) -> SharedBytes {
        SharedBytes::from(v.to_vec())
    }
}

impl From<SharedBytes> for Vec<u8> {
    fn from(b: SharedBytes) -> Vec<u8> {
        b.into_vec()
    }
}

impl PartialEq for SharedBytes {
    fn eq(&self, other: &SharedBytes) -> bool {
        **self == **other
    }
}

impl Eq for SharedBytes {}

impl PartialEq<[u8]> for SharedBytes {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<u8>> for SharedBytes {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl Hash for SharedBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl fmt::Debug for SharedBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytes")
            .field("len", &self.len())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedBytes, D::Error> {
        d.deserialize_bytes(SharedBytesVisitor)
    }
}

struct SharedBytesVisitor;

impl<'de> Visitor<'de> for SharedBytesVisitor {
    type Value = SharedBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<SharedBytes, E> {
        // Soundness of sharing instead of copying: `v` lies (checked by
        // address) inside the mapping of `SOURCE`, a read-only mapping of a
        // memfd whose seals (`F_SEAL_WRITE | F_SEAL_SHRINK`, checked by
        // `Mapped::open`) mean no process can change or cut its bytes, and
        // which stays mapped while the `Arc` kept here lives. So the range
        // read later through `Mapped`'s safe `Deref` is exactly `v`'s bytes,
        // now and for this value's whole life; no raw pointer is kept.
        match in_source(v) {
            Some((map, start)) => Ok(SharedBytes(Repr::Mapped {
                map,
                start,
                len: v.len(),
            })),
            None => Ok(SharedBytes::from(v.to_vec())),
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(v.as_bytes().to_vec()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<SharedBytes, E> {
        Ok(SharedBytes::from(v.into_bytes()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SharedBytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 20));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(SharedBytes::from(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipc::sealed::Sealed;

    fn mapping_of(bytes: &[u8]) -> Arc<Mapped> {
        let s = Sealed::copy_of(bytes).unwrap();
        Arc::new(Mapped::open(s.into_fd(), bytes.len()).unwrap())
    }

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Three {
        a: SharedBytes,
        n: u32,
        b: SharedBytes,
        c: SharedBytes,
    }

    #[test]
    fn shared_bytes_decoded_from_the_source_mapping_share_it() {
        let v = Three {
            a: SharedBytes::from(vec![1u8; 1000]),
            n: 5,
            b: SharedBytes::from(Vec::new()),
            c: SharedBytes::from(vec![3u8; 300]),
        };
        let enc = postcard::to_allocvec(&v).unwrap();
        let map = mapping_of(&enc);
        let got: Three = decoding_from(&map, || postcard::from_bytes(&map).unwrap());
        assert_eq!(got, v);
        assert!(got.a.is_mapped() && got.c.is_mapped());
        // An empty one owns nothing and needs no mapping.
        assert!(!got.b.is_mapped());
        // The fields point into the mapping, in order.
        let base = map.as_ptr() as usize;
        assert!(got.a.as_ptr() as usize >= base);
        assert!(got.c.as_ptr() as usize + got.c.len() <= base + map.len());
        drop(map);
        let a2 = got.a.clone();
        assert_eq!(a2.as_ptr(), got.a.as_ptr());
        drop(got);
        assert!(a2.iter().all(|&x| x == 1));
        assert_eq!(a2.into_vec(), vec![1u8; 1000]);
    }

    #[test]
    fn shared_bytes_from_any_other_source_are_owned() {
        let v = SharedBytes::from(vec![9u8; 2000]);
        let enc = postcard::to_allocvec(&v).unwrap();
        // No mapping offered: a copy.
        let got: SharedBytes = postcard::from_bytes(&enc).unwrap();
        assert!(!got.is_mapped());
        assert_eq!(got, v);
        // A mapping offered, but the input is elsewhere: a copy.
        let other = mapping_of(&enc);
        let got: SharedBytes = decoding_from(&other, || postcard::from_bytes(&enc).unwrap());
        assert!(!got.is_mapped());
        assert_eq!(got, v);
        // The source is gone after the decode (and after a panic in it).
        let got: SharedBytes = postcard::from_bytes(&other).unwrap();
        assert!(!got.is_mapped());
        let r = std::panic::catch_unwind(|| decoding_from(&other, || panic!("in decode")));
        assert!(r.is_err());
        let got: SharedBytes = postcard::from_bytes(&other).unwrap();
        assert!(!got.is_mapped());
        // MessagePack and JSON.
        let m = rmp_serde::to_vec(&v).unwrap();
        let got: SharedBytes = rmp_serde::from_slice(&m).unwrap();
        assert!(!got.is_mapped());
        assert_eq!(got, v);
        let j = serde_json::to_string(&SharedBytes::from(vec![1, 2, 3])).unwrap();
        assert_eq!(j, "[1,2,3]");
        let got: SharedBytes = serde_json::from_str(&j).unwrap();
        assert_eq!(&got[..], &[1, 2, 3]);
        let got: SharedBytes = serde_json::from_str("\"hi\"").unwrap();
        assert_eq!(&got[..], b"hi");
    }

    #[test]
    fn shared_bytes_compare_hash_and_convert_by_content() {
        use std::collections::HashSet;
        let a = SharedBytes::from(vec![1u8, 2, 3]);
        let enc = postcard::to_allocvec(&a).unwrap();
        let map = mapping_of(&enc);
        let b: SharedBytes = decoding_from(&map, || postcard::from_bytes(&map).unwrap());
        assert!(b.is_mapped() && !a.is_mapped());
        assert_eq!(a, b);
        assert_eq!(a, vec![1u8, 2, 3]);
        let set: HashSet<SharedBytes> = [a.clone(), b.clone()].into_iter().collect();
        assert_eq!(set.len(), 1);
        assert!(set.contains(&[1u8, 2, 3][..]));
        assert_eq!(format!("{b:?}"), "SharedBytes { len: 3, mapped: true }");
        // The same wire form as serde_bytes::ByteBuf.
        let bb: serde_bytes::ByteBuf = postcard::from_bytes(&enc).unwrap();
        assert_eq!(&bb[..], &[1, 2, 3]);
        assert_eq!(
            postcard::to_allocvec(&serde_bytes::ByteBuf::from(vec![1u8, 2, 3])).unwrap(),
            enc
        );
        let c = a.clone();
        let v = a.into_vec(); // shared with `c`: copied
        assert_eq!(v, c.to_vec());
        assert_eq!(Vec::from(c), vec![1, 2, 3]); // alone now: moved out
        assert!(SharedBytes::default().is_empty());
    }
}
