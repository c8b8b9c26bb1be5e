//! [`SharedBytes`]: a byte string that a large pool result (or task
//! argument) can share with the sealed memory it arrived in, instead of
//! being copied out of it; [`SharedBytesMut`]: one a task fills in place,
//! already in shared memory, whose memory a pool result then hands over
//! whole (no copy on either side).
#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use super::sealed::{Mapped, Writable};

thread_local! {
    /// The sealed mapping whose bytes this thread is decoding now (set by
    /// [`decoding_from`]), so a [`SharedBytes`] decoded from a slice inside
    /// it can keep the mapping instead of copying.
    static SOURCE: RefCell<Option<Arc<Mapped>>> = const { RefCell::new(None) };
    /// Set while a pool result is encoded ([`exporting`]): frozen buffers
    /// handed over by descriptor.
    static EXPORT: RefCell<Option<Exports>> = const { RefCell::new(None) };
    /// Set while a pool result is decoded ([`importing`]): the buffers that
    /// came by descriptor.
    static IMPORT: RefCell<Option<Imports>> = const { RefCell::new(None) };
}

/// A frozen [`SharedBytesMut`] at least this long goes to a pool's parent
/// by descriptor; a shorter one is copied (as bytes in the result's
/// encoding: cheaper than a descriptor and a mapping).
pub(crate) const EXPORT_FROM: usize = 256 << 10;

/// The buffers a result's encoding hands over by descriptor: each with its
/// ordinal among the result's `SharedBytes` (in encoding order).
#[derive(Default)]
struct Exports {
    seen: u32,
    out: Vec<(u32, Arc<Mapped>)>,
}

/// The buffers received by descriptor with a result, by ordinal.
struct Imports {
    seen: u32,
    bufs: Vec<(u32, Option<Arc<Mapped>>)>,
}

/// Runs `f` (an encode of a pool result) with every frozen
/// [`SharedBytesMut`] of [`EXPORT_FROM`] bytes or more that it encodes
/// handed over by descriptor (it encodes as an empty byte string); returns
/// those, each with its ordinal among the `SharedBytes` encoded. The
/// encoding is only good with them, decoded under [`importing`].
pub(crate) fn exporting<R>(f: impl FnOnce() -> R) -> (R, Vec<(u32, Arc<Mapped>)>) {
    struct Restore(Option<Exports>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            EXPORT.with(|e| *e.borrow_mut() = prev);
        }
    }
    let restore = Restore(EXPORT.with(|e| e.borrow_mut().replace(Exports::default())));
    let r = f();
    let mine = EXPORT.with(|e| e.borrow_mut().take()).unwrap_or_default();
    drop(restore);
    (r, mine.out)
}

/// Runs `f` (the decode of an encoding made under [`exporting`]) with the
/// buffers that came by descriptor, each taken by the [`SharedBytes`] of
/// its ordinal; also returns whether every one was taken (if not, the
/// encoding did not match them).
pub(crate) fn importing<R>(bufs: Vec<(u32, Arc<Mapped>)>, f: impl FnOnce() -> R) -> (R, bool) {
    struct Restore(Option<Imports>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            IMPORT.with(|i| *i.borrow_mut() = prev);
        }
    }
    let mine = Imports {
        seen: 0,
        bufs: bufs.into_iter().map(|(o, m)| (o, Some(m))).collect(),
    };
    let restore = Restore(IMPORT.with(|i| i.borrow_mut().replace(mine)));
    let r = f();
    let mine = IMPORT.with(|i| i.borrow_mut().take());
    drop(restore);
    let all = mine.is_some_and(|m| m.bufs.iter().all(|(_, b)| b.is_none()));
    (r, all)
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
/// **No copy at all.** A `SharedBytes` made by
/// [`SharedBytesMut::freeze`] is the task's own shared memory, sealed: as
/// a pool result (256 KiB or more) it goes to the parent by its descriptor
/// and the parent maps that same memory (see [`SharedBytesMut`]).
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
    /// mapping (a large result or argument received without a copy, or a
    /// frozen [`SharedBytesMut`]) rather than owned by this value.
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
        // Under `exporting`, a whole frozen buffer goes by descriptor and
        // its place holds an empty byte string.
        let exported = EXPORT.with(|e| {
            let mut e = e.borrow_mut();
            let e = e.as_mut()?;
            let ordinal = e.seen;
            e.seen = e.seen.saturating_add(1);
            match &self.0 {
                Repr::Mapped { map, start: 0, len }
                    if *len == map.len() && *len >= EXPORT_FROM && map.fd().is_some() =>
                {
                    e.out.push((ordinal, map.clone()));
                    Some(())
                }
                _ => None,
            }
        });
        match exported {
            Some(()) => s.serialize_bytes(&[]),
            None => s.serialize_bytes(self),
        }
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SharedBytes, D::Error> {
        // Under `importing`, this one's bytes may have come by descriptor
        // (its ordinal says; its place must then be empty).
        let imported = IMPORT.with(|i| {
            let mut i = i.borrow_mut();
            let i = i.as_mut()?;
            let ordinal = i.seen;
            i.seen = i.seen.saturating_add(1);
            i.bufs
                .iter_mut()
                .find(|(o, _)| *o == ordinal)
                .and_then(|(_, b)| b.take())
        });
        let v = d.deserialize_bytes(SharedBytesVisitor)?;
        match imported {
            None => Ok(v),
            Some(map) if v.is_empty() => {
                let len = map.len();
                Ok(SharedBytes(Repr::Mapped { map, start: 0, len }))
            }
            Some(_) => Err(de::Error::custom(
                "bytes in the place of a shared buffer that came by descriptor",
            )),
        }
    }
}

/// A growable byte buffer in shared memory (a memfd), filled in place and
/// then [`freeze`](Self::freeze)d into a [`SharedBytes`] that a process
/// pool hands to its parent without copying a byte.
///
/// A task that makes a large byte string as a `Vec<u8>` and returns it has
/// it copied into the shared memory that carries it to the parent. A
/// `SharedBytesMut` *is* that memory: the task writes into it (it derefs to
/// `&mut [u8]`, grows with [`extend_from_slice`](Self::extend_from_slice)
/// or [`resize`](Self::resize), and is an [`io::Write`](std::io::Write)),
/// then returns `buf.freeze()?`. Freezing unmaps the writable mapping and
/// seals the memfd against any write, shrink or growth, so no one can
/// change the bytes after that; a `SharedBytes` of 256 KiB or more frozen
/// this way travels as a pool result (`Pool`, `ProcessPoolExecutor`) by
/// its descriptor alone, and the parent maps it read-only: the bytes are
/// written once, by the task, and never copied. Anywhere else (a thread
/// pool, a [`Connection`](super::Connection), an [`ipc::Queue`](super::Queue),
/// a task's argument, any serde format) the frozen value encodes as the
/// ordinary byte string it is, like any `SharedBytes`.
///
/// Memory is allocated in one call when the buffer is made or grows (new
/// bytes are zero), so running out of memory is an error here rather than
/// a fault on a later write. Dropping the buffer (frozen or not) frees it;
/// a frozen one lives until the last `SharedBytes` referring to it, in any
/// process, is dropped. Linux only (memfd). Python has no equivalent:
/// `multiprocessing` always pickles a copy of a result (see
/// `docs/PYTHON.md`).
///
/// ```
/// use spindle::ipc::{SharedBytes, SharedBytesMut};
/// use spindle::process::Pool;
///
/// #[spindle::task]
/// fn render(n: u64) -> Result<SharedBytes, String> {
///     let mut buf = SharedBytesMut::zeroed(n as usize).map_err(|e| e.to_string())?;
///     for (i, b) in buf.iter_mut().enumerate() {
///         *b = (i % 251) as u8;
///     }
///     buf.freeze().map_err(|e| e.to_string())
/// }
///
/// let pool = Pool::new(1)?;
/// let img = pool.apply(render::call(8 << 20)).unwrap().unwrap();
/// assert_eq!(img.len(), 8 << 20);
/// assert!(img.is_mapped()); // the task's own memory, mapped read-only
/// assert_eq!(img[300], (300 % 251) as u8);
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
pub struct SharedBytesMut(Writable);

impl SharedBytesMut {
    /// An empty buffer with room for `capacity` bytes (allocated now).
    pub fn with_capacity(capacity: usize) -> std::io::Result<SharedBytesMut> {
        Writable::with_capacity(capacity).map(SharedBytesMut)
    }

    /// A buffer of `len` zero bytes.
    pub fn zeroed(len: usize) -> std::io::Result<SharedBytesMut> {
        let mut b = SharedBytesMut::with_capacity(len)?;
        b.0.set_len(len);
        Ok(b)
    }

    /// Bytes it can hold without growing.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }

    /// Makes room for at least `additional` more bytes (at least doubling
    /// the capacity when it grows).
    pub fn reserve(&mut self, additional: usize) -> std::io::Result<()> {
        let need = self.len().checked_add(additional).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::OutOfMemory, "a buffer too large")
        })?;
        if need > self.capacity() {
            self.0
                .reserve(need.max(self.capacity().saturating_mul(2)))?;
        }
        Ok(())
    }

    /// Appends `bytes`, growing if needed.
    pub fn extend_from_slice(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reserve(bytes.len())?;
        let at = self.len();
        self.0.set_len(at + bytes.len());
        self.0[at..].copy_from_slice(bytes);
        Ok(())
    }

    /// Sets the length to `len`: new bytes are `value`, growing if needed.
    pub fn resize(&mut self, len: usize, value: u8) -> std::io::Result<()> {
        let at = self.len();
        if len > at {
            self.reserve(len - at)?;
            self.0.set_len(len);
            self.0[at..].fill(value);
        } else {
            self.0.set_len(len);
        }
        Ok(())
    }

    /// Shortens it to `len` bytes (no effect if it is not longer); the
    /// capacity stays.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.0.set_len(len);
        }
    }

    /// Makes it empty; the capacity stays.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// The bytes as an immutable [`SharedBytes`], without a copy: the
    /// writable mapping goes, the memfd is cut to the length and sealed
    /// (no write, shrink or growth by anyone from now on), and mapped
    /// read-only. [`is_mapped`](SharedBytes::is_mapped) is `true` (`false`
    /// for an empty buffer, which is freed here).
    pub fn freeze(self) -> std::io::Result<SharedBytes> {
        if self.is_empty() {
            return Ok(SharedBytes::new());
        }
        let map = self.0.freeze()?;
        let len = map.len();
        Ok(SharedBytes(Repr::Mapped {
            map: Arc::new(map),
            start: 0,
            len,
        }))
    }
}

impl Deref for SharedBytesMut {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for SharedBytesMut {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl AsRef<[u8]> for SharedBytesMut {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for SharedBytesMut {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl std::io::Write for SharedBytesMut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.extend_from_slice(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.extend_from_slice(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for SharedBytesMut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedBytesMut")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
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

    #[test]
    fn shared_bytes_mut_fills_grows_and_freezes_without_a_copy() {
        let mut b = SharedBytesMut::zeroed(5).unwrap();
        assert_eq!(&b[..], &[0; 5]);
        b[1] = 1;
        b.extend_from_slice(b"abc").unwrap();
        std::io::Write::write_all(&mut b, b"de").unwrap();
        assert_eq!(&b[..], b"\0\x01\0\0\0abcde");
        b.truncate(6);
        b.resize(8, b'z').unwrap();
        assert_eq!(&b[..], b"\0\x01\0\0\0azz");
        let cap = b.capacity();
        b.resize(cap + 1, 0).unwrap();
        assert!(b.capacity() >= 2 * cap);
        b.clear();
        assert!(b.is_empty());
        b.extend_from_slice(&[4u8; 1000]).unwrap();
        assert!(format!("{b:?}").starts_with("SharedBytesMut { len: 1000"));
        let f = b.freeze().unwrap();
        // The same memory, now read-only: not a copy.
        assert!(f.is_mapped() && f.len() == 1000 && f.iter().all(|&x| x == 4));
        let Repr::Mapped { map, .. } = &f.0 else {
            panic!("owned")
        };
        assert!(map.fd().is_some());
        // A clone shares the one mapping.
        assert_eq!(f.clone().as_ptr(), f.as_ptr());
        assert_eq!(f.into_vec(), vec![4u8; 1000]);
        // Empty: nothing mapped.
        let e = SharedBytesMut::with_capacity(100)
            .unwrap()
            .freeze()
            .unwrap();
        assert!(e.is_empty() && !e.is_mapped());
        assert!(SharedBytesMut::with_capacity(usize::MAX).is_err());
        let mut b = SharedBytesMut::zeroed(1).unwrap();
        assert!(b.reserve(usize::MAX).is_err());
        assert_eq!(&b[..], &[0]);
    }

    /// A frozen buffer of `n` bytes, byte `i` = `i % 251`.
    fn frozen(n: usize) -> SharedBytes {
        let mut b = SharedBytesMut::zeroed(n).unwrap();
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i % 251) as u8;
        }
        b.freeze().unwrap()
    }

    /// What the receiving side gets for an exported buffer: its memfd,
    /// checked and mapped again.
    fn received(m: &Arc<Mapped>) -> Arc<Mapped> {
        let fd = m.fd().unwrap().try_clone_to_owned().unwrap();
        Arc::new(Mapped::open(fd, m.len()).unwrap())
    }

    #[test]
    fn frozen_buffers_go_by_descriptor_only_under_exporting() {
        let big = EXPORT_FROM;
        let v = Three {
            a: frozen(big),
            n: 9,
            b: frozen(10),
            c: frozen(big + 1),
        };
        // Elsewhere: the plain bytes.
        let plain = postcard::to_allocvec(&v).unwrap();
        assert!(plain.len() > 2 * big);
        let back: Three = postcard::from_bytes(&plain).unwrap();
        assert_eq!(back, v);
        assert!(!back.a.is_mapped());
        // Exporting: the big frozen ones by descriptor, by ordinal.
        let (enc, out) = exporting(|| postcard::to_allocvec(&v).unwrap());
        assert!(enc.len() < 64, "{}", enc.len());
        assert_eq!(out.iter().map(|o| o.0).collect::<Vec<_>>(), [0, 2]);
        assert_eq!((out[0].1.len(), out[1].1.len()), (big, big + 1));
        // Owned or received-mapped ones are never exported.
        let (_, none) = exporting(|| {
            postcard::to_allocvec(&(SharedBytes::from(vec![1u8; big]), back.a.clone())).unwrap()
        });
        assert!(none.is_empty());
        // Decoded with them: the receiver's own mappings of the memfds.
        let bufs: Vec<_> = out.iter().map(|(o, m)| (*o, received(m))).collect();
        let (got, all) = importing(bufs, || postcard::from_bytes::<Three>(&enc).unwrap());
        assert!(all);
        assert_eq!(got, v);
        assert!(got.a.is_mapped() && got.c.is_mapped() && !got.b.is_mapped());
        assert_ne!(got.a.as_ptr(), v.a.as_ptr());
        drop(v);
        assert!(got.a.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
        // Without them, or with the wrong ordinals, the encoding is not the
        // value: an error or unclaimed buffers, never other bytes.
        let short: Three = postcard::from_bytes(&enc).unwrap();
        assert!(short.a.is_empty());
        let wrong: Vec<_> = out.iter().map(|(o, m)| (o + 1, received(m))).collect();
        let (r, all) = importing(wrong, || postcard::from_bytes::<Three>(&enc));
        assert!(r.is_err() || !all);
        let extra = vec![(0, received(&out[0].1)), (7, received(&out[1].1))];
        let (r, all) = importing(extra, || postcard::from_bytes::<Three>(&enc).unwrap());
        assert!(!all && r.a.len() == big);
        // Contexts end with their call, even by a panic.
        let r = std::panic::catch_unwind(|| exporting(|| panic!("in encode")));
        assert!(r.is_err());
        assert!(EXPORT.with(|e| e.borrow().is_none()));
        assert!(IMPORT.with(|i| i.borrow().is_none()));
    }
}
