//! One key's entry: header, expiry, key and value in a single allocation.
//!
//! A slot's table holds one [`Entry`] per key, a pointer-sized owning
//! handle. Behind it is one block, sized to the allocator's size class for
//! what it holds:
//!
//! ```text
//!   narrow header, 8 bytes (key and body up to 255 bytes each)
//!     0 tag: kind (3 bits) | TTL (1) | WIDE (1)     1 LFU counter
//!     2 key length:u8                               3 body length:u8
//!     4 last access: low 32 bits of Unix ms
//!   wide header, 24 bytes
//!     0 tag   1 LFU   2 zero:u16   4 last access   8 key length:u64   16 body length:u64
//!
//!   header | [expiry, Unix ms:u64 — only with TTL] | key | body | slack up to the size class
//! ```
//!
//! The body is the value itself for a string and for a small hash (the
//! packed buffer of [`crate::hash`]); for the other types it is the owning
//! pointer (8 bytes, unaligned) of the value's own allocation. A 16-byte key
//! with a 32-byte string takes one 64-byte block and its table slot.
//!
//! The block's size is a function of the header ([`memory::size_class`] of
//! the bytes used), so nothing else is stored: a value that grows within its
//! class's slack is changed in place, and one that crosses a class moves to a
//! new block (geometric steps, so appending stays amortised O(1)).

use crate::db::{NO_EXPIRE, UnixMs};
use crate::hash::{self, Hash, HashRef, Packed, Table};
use crate::list::List;
use crate::memory::size_class;
use crate::set::Set;
use crate::value::{Value, ValueRef};
use crate::zset::ZSet;
use std::alloc::{self, Layout};
use std::fmt;
use std::ops::Range;
use std::ptr::{self, NonNull};

/// A new key's access-frequency counter (Redis's LFU_INIT_VAL).
pub const LFU_INIT: u8 = 5;
/// Redis's lfu-log-factor default.
const LFU_LOG_FACTOR: u64 = 10;
/// Redis's lfu-decay-time default, in minutes.
const LFU_DECAY_MINUTES: u64 = 1;

const KIND_BITS: u8 = 0b111;
const TTL_FLAG: u8 = 1 << 3;
const WIDE_FLAG: u8 = 1 << 4;
const NARROW_HEADER_BYTES: usize = 8;
const WIDE_HEADER_BYTES: usize = 24;
const EXPIRY_BYTES: usize = 8;
/// Bytes of a block [`Entry::prefetch`] asks for: a small entry's whole
/// block (a narrow header, a 16-byte key and a 32-byte value take 56).
const PREFETCH_BYTES: usize = 64;
/// The longest key and body a narrow header describes.
const NARROW_LEN_MAX: usize = u8::MAX as usize;
const LFU_AT: usize = 1;
const ACCESS_AT: usize = 4;
/// Blocks ask for no alignment, and multi-byte fields are read and written
/// unaligned (free on the targets served). mimalloc's Rust binding sends
/// every allocation through `mi_malloc_aligned`, which serves a request
/// larger than 1 KiB, or one that meets an empty page, by over-allocating
/// `align - 1` bytes when the block size is not a power of two: with 8-byte
/// alignment a block sized exactly to its class (448, 1280, ...) would land
/// one class up.
const BLOCK_ALIGN: usize = 1;
const POINTER_BYTES: usize = size_of::<*mut u8>();

/// What a body holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Str = 0,
    HashSmall = 1,
    HashTable = 2,
    List = 3,
    Set = 4,
    ZSet = 5,
}

impl Kind {
    #[inline]
    fn of_tag(tag: u8) -> Kind {
        match tag & KIND_BITS {
            0 => Kind::Str,
            1 => Kind::HashSmall,
            2 => Kind::HashTable,
            3 => Kind::List,
            4 => Kind::Set,
            _ => Kind::ZSet,
        }
    }

    /// True when the body is an owning pointer rather than the value's bytes.
    fn is_boxed(self) -> bool {
        !matches!(self, Kind::Str | Kind::HashSmall)
    }
}

/// The layout of a block: which header, whether it has an expiry, and the
/// lengths of key and body.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Shape {
    wide: bool,
    ttl: bool,
    key_len: usize,
    body_len: usize,
}

impl Shape {
    #[inline]
    fn new(ttl: bool, key_len: usize, body_len: usize) -> Shape {
        Shape { wide: key_len > NARROW_LEN_MAX || body_len > NARROW_LEN_MAX, ttl, key_len, body_len }
    }

    #[inline]
    fn header(self) -> usize {
        if self.wide { WIDE_HEADER_BYTES } else { NARROW_HEADER_BYTES }
    }

    #[inline]
    fn key_at(self) -> usize {
        self.header() + if self.ttl { EXPIRY_BYTES } else { 0 }
    }

    #[inline]
    fn body_at(self) -> usize {
        self.key_at() + self.key_len
    }

    /// Bytes of the block: what it holds, rounded up to its size class.
    fn block_bytes(self) -> usize {
        size_class(self.body_at().checked_add(self.body_len).unwrap_or_else(|| too_large()))
    }

    fn layout(self) -> Layout {
        block_layout(self.block_bytes())
    }

    fn flags(self) -> u8 {
        (if self.ttl { TTL_FLAG } else { 0 }) | (if self.wide { WIDE_FLAG } else { 0 })
    }
}

fn block_layout(bytes: usize) -> Layout {
    Layout::from_size_align(bytes, BLOCK_ALIGN).unwrap_or_else(|_| too_large())
}

#[cold]
fn too_large() -> ! {
    panic!("entry larger than the address space")
}

/// What goes into a body: a value's bytes, or the owning pointer of a boxed value.
#[derive(Clone, Copy)]
enum Body<'a> {
    Bytes(&'a [u8]),
    Boxed(*mut u8),
}

impl Body<'_> {
    fn len(self) -> usize {
        match self {
            Body::Bytes(b) => b.len(),
            Body::Boxed(_) => POINTER_BYTES,
        }
    }

    /// Writes the body at `dst`.
    ///
    /// # Safety
    /// `dst` is valid for `self.len()` bytes of writes and does not overlap the bytes.
    unsafe fn write_to(self, dst: *mut u8) {
        match self {
            // SAFETY: the caller's guarantee.
            Body::Bytes(b) => unsafe { ptr::copy_nonoverlapping(b.as_ptr(), dst, b.len()) },
            // A typed write, so the pointer keeps its provenance.
            // SAFETY: the caller's guarantee; the write is unaligned.
            Body::Boxed(p) => unsafe { dst.cast::<*mut u8>().write_unaligned(p) },
        }
    }
}

/// Calls `f` with what an entry's body holds for `value`: its bytes, or the
/// owning pointer it gives up (which the entry then owns).
fn with_body_of<R>(value: Value, f: impl FnOnce(Kind, Body<'_>) -> R) -> R {
    match value {
        Value::Str(s) => f(Kind::Str, Body::Bytes(&s)),
        Value::Hash(Hash::Small(b)) => f(Kind::HashSmall, Body::Bytes(&b)),
        Value::Hash(Hash::Table(t)) => f(Kind::HashTable, Body::Boxed(Box::into_raw(t).cast())),
        Value::List(l) => f(Kind::List, Body::Boxed(Box::into_raw(l).cast())),
        Value::Set(s) => f(Kind::Set, Body::Boxed(Box::into_raw(s).cast())),
        Value::ZSet(z) => f(Kind::ZSet, Body::Boxed(Box::into_raw(z).cast())),
    }
}

/// The boxed value `raw` owns, for a boxed `kind`; `None` for the others.
///
/// # Safety
/// For a boxed `kind`, `raw` came from `Box::into_raw` of the type `kind`
/// names, and the caller gives up its ownership.
unsafe fn take_boxed(kind: Kind, raw: *mut u8) -> Option<Value> {
    // SAFETY: the caller's guarantee, for each type.
    unsafe {
        Some(match kind {
            Kind::Str | Kind::HashSmall => return None,
            Kind::HashTable => Value::Hash(Hash::Table(Box::from_raw(raw.cast::<Table>()))),
            Kind::List => Value::List(Box::from_raw(raw.cast::<List>())),
            Kind::Set => Value::Set(Box::from_raw(raw.cast::<Set>())),
            Kind::ZSet => Value::ZSet(Box::from_raw(raw.cast::<ZSet>())),
        })
    }
}

/// A key and what it holds, in one block (see the module docs).
///
/// Invariants: `block` was allocated with `self.shape().layout()`; the
/// header, the expiry when the TTL flag is set, the key and the body are
/// initialised; a boxed body holds the pointer of a live value of its kind's
/// type, owned by this entry alone.
pub struct Entry {
    block: NonNull<u8>,
}

// SAFETY: an Entry owns its block, and the value a boxed body points to,
// exactly as a Box would: nothing else refers to them and nothing mutates
// them through a shared reference. Those values (Table, List, Set, ZSet) are
// Send and Sync (asserted in the tests).
unsafe impl Send for Entry {}
// SAFETY: as for Send; `&Entry` only reads.
unsafe impl Sync for Entry {}

impl Entry {
    /// An entry holding the string `value`.
    pub fn new_str(key: &[u8], value: &[u8], expire_at: UnixMs, now: UnixMs) -> Entry {
        Entry::with_body(key, Kind::Str, Body::Bytes(value), expire_at, now)
    }

    /// An entry holding `value`.
    pub fn new(key: &[u8], value: Value, expire_at: UnixMs, now: UnixMs) -> Entry {
        with_body_of(value, |kind, body| Entry::with_body(key, kind, body, expire_at, now))
    }

    fn with_body(key: &[u8], kind: Kind, body: Body, expire_at: UnixMs, now: UnixMs) -> Entry {
        let shape = Shape::new(expire_at != NO_EXPIRE, key.len(), body.len());
        let block = Entry::allocate(shape);
        let p = block.as_ptr();
        // SAFETY: the block is fresh and at least
        // `shape.body_at() + body.len()` bytes long; every byte of header,
        // expiry, key and body is written before the Entry exists, and the
        // sources are other allocations.
        unsafe {
            Entry::write_shape(p, kind, shape);
            p.add(LFU_AT).write(LFU_INIT);
            p.add(ACCESS_AT).cast::<u32>().write_unaligned(now as u32);
            if shape.ttl {
                p.add(shape.header()).cast::<u64>().write_unaligned(expire_at);
            }
            ptr::copy_nonoverlapping(key.as_ptr(), p.add(shape.key_at()), key.len());
            body.write_to(p.add(shape.body_at()));
        }
        Entry { block }
    }

    fn allocate(shape: Shape) -> NonNull<u8> {
        Entry::allocate_bytes(shape.block_bytes())
    }

    fn allocate_bytes(bytes: usize) -> NonNull<u8> {
        let layout = block_layout(bytes);
        // SAFETY: the layout is at least one header (8 bytes) long.
        let p = unsafe { alloc::alloc(layout) };
        NonNull::new(p).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// Writes the tag (`kind` and the flags of `shape`) and the lengths.
    ///
    /// # Safety
    /// `p` is a block of at least `shape.header()` bytes.
    #[inline]
    unsafe fn write_shape(p: *mut u8, kind: Kind, shape: Shape) {
        // SAFETY: the caller's guarantee; every write is inside the header.
        unsafe {
            p.write(kind as u8 | shape.flags());
            if shape.wide {
                p.add(2).cast::<u16>().write_unaligned(0);
                p.add(8).cast::<u64>().write_unaligned(shape.key_len as u64);
                p.add(16).cast::<u64>().write_unaligned(shape.body_len as u64);
            } else {
                p.add(2).write(shape.key_len as u8);
                p.add(3).write(shape.body_len as u8);
            }
        }
    }

    #[inline]
    fn tag(&self) -> u8 {
        // SAFETY: a block starts with an initialised header.
        unsafe { self.block.as_ptr().read() }
    }

    #[inline]
    fn kind(&self) -> Kind {
        Kind::of_tag(self.tag())
    }

    fn set_kind(&mut self, kind: Kind) {
        let tag = (self.tag() & !KIND_BITS) | kind as u8;
        // SAFETY: the tag is the block's first byte.
        unsafe { self.block.as_ptr().write(tag) };
    }

    #[inline]
    fn shape(&self) -> Shape {
        let p = self.block.as_ptr();
        let tag = self.tag();
        let ttl = tag & TTL_FLAG != 0;
        // SAFETY: the header is initialised and as long as its WIDE flag
        // says.
        unsafe {
            if tag & WIDE_FLAG == 0 {
                Shape { wide: false, ttl, key_len: p.add(2).read() as usize, body_len: p.add(3).read() as usize }
            } else {
                let key_len = p.add(8).cast::<u64>().read_unaligned() as usize;
                Shape { wide: true, ttl, key_len, body_len: p.add(16).cast::<u64>().read_unaligned() as usize }
            }
        }
    }

    /// Asks the CPU to start loading the first 64 bytes (`PREFETCH_BYTES`) of the
    /// entry's block into its cache, and returns at once. A walk over many
    /// entries (a snapshot serializing a slot) calls it for the entries it
    /// reaches next, so that their cache misses overlap instead of each
    /// stalling in turn. A hint only: it reads nothing, and does nothing on
    /// targets without the instruction.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let p = self.block.as_ptr().cast::<i8>().cast_const();
            // SAFETY: a prefetch loads nothing into the program and never
            // faults, whatever the address (the second one may lie past the
            // block: `wrapping_add` keeps computing it defined); SSE, which
            // provides it, is part of every x86_64 target.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH_BYTES - 1));
            }
        }
    }

    /// The key.
    #[inline]
    pub fn key(&self) -> &[u8] {
        let s = self.shape();
        // SAFETY: the key's bytes are initialised and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.block.as_ptr().add(s.key_at()), s.key_len) }
    }

    /// The body's bytes (of a string or small hash: a boxed body is read with [`Entry::boxed`]).
    #[inline]
    fn body(&self) -> &[u8] {
        debug_assert!(!self.kind().is_boxed());
        let s = self.shape();
        // SAFETY: the body's bytes are initialised and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.block.as_ptr().add(s.body_at()), s.body_len) }
    }

    fn body_mut(&mut self) -> &mut [u8] {
        debug_assert!(!self.kind().is_boxed());
        let s = self.shape();
        // SAFETY: as for `body`, borrowed mutably through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.block.as_ptr().add(s.body_at()), s.body_len) }
    }

    /// The owning pointer a boxed body holds.
    fn boxed(&self) -> *mut u8 {
        debug_assert!(self.kind().is_boxed());
        let s = self.shape();
        debug_assert_eq!(s.body_len, POINTER_BYTES);
        // SAFETY: a boxed body is one pointer, written with its provenance
        // by `Body::write_to` and moved only by byte copies that keep it.
        unsafe { self.block.as_ptr().add(s.body_at()).cast::<*mut u8>().read_unaligned() }
    }

    /// The expiry in Unix milliseconds, or `NO_EXPIRE`.
    #[inline]
    pub fn expire_at(&self) -> UnixMs {
        let tag = self.tag();
        if tag & TTL_FLAG == 0 {
            return NO_EXPIRE;
        }
        let at = if tag & WIDE_FLAG == 0 { NARROW_HEADER_BYTES } else { WIDE_HEADER_BYTES };
        // SAFETY: with the TTL flag an initialised expiry follows the header.
        unsafe { self.block.as_ptr().add(at).cast::<u64>().read_unaligned() }
    }

    /// True when the key has expired at `now`.
    #[inline]
    pub fn is_expired(&self, now: UnixMs) -> bool {
        let at = self.expire_at();
        at != NO_EXPIRE && at <= now
    }

    /// Sets or clears (`NO_EXPIRE`) the expiry; the block gains or loses its 8 bytes.
    pub(crate) fn set_expire_at(&mut self, at: UnixMs) {
        let new = Shape { ttl: at != NO_EXPIRE, ..self.shape() };
        self.reshape(new);
        if new.ttl {
            // SAFETY: the block now has an expiry slot after the header.
            unsafe { self.block.as_ptr().add(new.header()).cast::<u64>().write_unaligned(at) };
        }
    }

    /// Moves the entry to the layout `new` (with the same key length).
    /// Kept: kind, LFU counter, access time, key, the expiry when both
    /// layouts have one, and the first min(old, new) body bytes. Body bytes
    /// past those, and an expiry that `new` adds, are uninitialised: the
    /// caller writes them before anything reads them.
    fn reshape(&mut self, new: Shape) {
        let old = self.shape();
        debug_assert_eq!(old.key_len, new.key_len);
        if old == new {
            return;
        }
        let kind = self.kind();
        let p = self.block.as_ptr();
        let (old_bytes, new_bytes) = (old.block_bytes(), new.block_bytes());
        if old.wide == new.wide && old.ttl == new.ttl && old_bytes == new_bytes {
            // Same block, same offsets: only the body's length changes.
            // SAFETY: the block is at least one header long.
            unsafe { Entry::write_shape(p, kind, new) };
            return;
        }
        let q = Entry::allocate_bytes(new_bytes);
        let kept = old.body_len.min(new.body_len);
        // SAFETY: `p` is the old block, initialised as `old` says; `q` is a
        // fresh block with room for everything `new` holds. Each copy reads
        // initialised bytes of `p` and writes inside `q`. `p` is freed with
        // the layout it was allocated with and not used again; ownership of
        // a boxed body's value moves with its bytes.
        unsafe {
            let d = q.as_ptr();
            Entry::write_shape(d, kind, new);
            d.add(LFU_AT).write(p.add(LFU_AT).read());
            d.add(ACCESS_AT).cast::<u32>().write_unaligned(p.add(ACCESS_AT).cast::<u32>().read_unaligned());
            if old.ttl && new.ttl {
                d.add(new.header()).cast::<u64>().write_unaligned(p.add(old.header()).cast::<u64>().read_unaligned());
            }
            ptr::copy_nonoverlapping(p.add(old.key_at()), d.add(new.key_at()), old.key_len);
            ptr::copy_nonoverlapping(p.add(old.body_at()), d.add(new.body_at()), kept);
            alloc::dealloc(p, block_layout(old_bytes));
        }
        self.block = q;
    }

    /// Replaces `range` of a byte body (string, small hash) with the
    /// concatenation of `parts`, moving to another block only when the size
    /// class changes.
    fn splice_body(&mut self, range: Range<usize>, parts: &[&[u8]]) {
        debug_assert!(!self.kind().is_boxed());
        let old = self.shape();
        assert!(range.start <= range.end && range.end <= old.body_len, "splice outside the body");
        let add = parts.iter().try_fold(0usize, |n, p| n.checked_add(p.len())).unwrap_or_else(|| too_large());
        let tail = old.body_len - range.end;
        let new_len = (range.start + tail).checked_add(add).unwrap_or_else(|| too_large());
        let new = Shape::new(old.ttl, old.key_len, new_len);
        if new_len > old.body_len {
            self.reshape(new);
        }
        let body = self.block.as_ptr().wrapping_add(self.shape().body_at());
        // SAFETY: the body has room for max(old, new) bytes here (it grew
        // above and shrinks only below, after the moves). The tail
        // `range.end..old_len` is initialised and moves inside the body
        // (`ptr::copy` allows the overlap); the parts are borrowed while
        // `self` is borrowed mutably, so they lie outside the block.
        unsafe {
            ptr::copy(body.add(range.end), body.add(range.start + add), tail);
            let mut at = range.start;
            for part in parts {
                ptr::copy_nonoverlapping(part.as_ptr(), body.add(at), part.len());
                at += part.len();
            }
        }
        if new_len < old.body_len {
            self.reshape(new);
        }
    }

    /// Grows a byte body to `len` bytes, the new ones zero.
    fn grow_body_zeroed(&mut self, len: usize) {
        let old = self.shape();
        debug_assert!(len >= old.body_len && !self.kind().is_boxed());
        let new = Shape::new(old.ttl, old.key_len, len);
        self.reshape(new);
        // SAFETY: the body now has room for `len` bytes; the new ones are written here.
        unsafe { self.block.as_ptr().add(new.body_at() + old.body_len).write_bytes(0, len - old.body_len) };
    }

    /// Replaces the value and the expiry, keeping key, LFU counter and access time.
    fn set_body(&mut self, kind: Kind, body: Body, expire_at: UnixMs) {
        self.drop_boxed();
        let new = Shape::new(expire_at != NO_EXPIRE, self.shape().key_len, body.len());
        self.reshape(new);
        let p = self.block.as_ptr();
        // SAFETY: the block has `new`'s layout; the expiry (when set) and the
        // body are written here, and the body's source lies outside the block.
        unsafe {
            Entry::write_shape(p, kind, new);
            if new.ttl {
                p.add(new.header()).cast::<u64>().write_unaligned(expire_at);
            }
            body.write_to(p.add(new.body_at()));
        }
    }

    /// Replaces the value with the string `value` and sets the expiry (SET).
    pub(crate) fn set_str(&mut self, value: &[u8], expire_at: UnixMs) {
        self.set_body(Kind::Str, Body::Bytes(value), expire_at);
    }

    /// Replaces the value and sets the expiry.
    pub(crate) fn set_value(&mut self, value: Value, expire_at: UnixMs) {
        with_body_of(value, |kind, body| self.set_body(kind, body, expire_at));
    }

    /// Frees the value a boxed body owns; the entry is left holding a string
    /// (the pointer's bytes) until its body is replaced or it is dropped.
    fn drop_boxed(&mut self) {
        let kind = self.kind();
        if kind.is_boxed() {
            let raw = self.boxed();
            // The entry stops owning the value before it is dropped.
            self.set_kind(Kind::Str);
            // SAFETY: a boxed body owns a value of its kind's type; the entry gave it up above.
            drop(unsafe { take_boxed(kind, raw) });
        }
    }

    /// The boxed value, borrowed.
    ///
    /// # Safety
    /// The body is boxed and owns a `T` (the type its kind names).
    unsafe fn boxed_ref<T>(&self) -> &T {
        // SAFETY: the caller's guarantee that a live `T` is there; the
        // reference borrows `self`, which owns the value, so the value
        // outlives it and nothing mutates it meanwhile.
        unsafe { &*self.boxed().cast::<T>() }
    }

    /// The boxed value, borrowed mutably.
    ///
    /// # Safety
    /// As for [`Entry::boxed_ref`].
    unsafe fn boxed_mut<T>(&mut self) -> &mut T {
        // SAFETY: as in `boxed_ref`, and the entry is borrowed mutably, so
        // this is the only reference to the value.
        unsafe { &mut *self.boxed().cast::<T>() }
    }

    /// The value.
    #[inline]
    pub fn value(&self) -> ValueRef<'_> {
        match self.kind() {
            Kind::Str => ValueRef::Str(self.body()),
            Kind::HashSmall | Kind::HashTable => ValueRef::Hash(self.hash()),
            // SAFETY: a List entry's body owns a List.
            Kind::List => ValueRef::List(unsafe { self.boxed_ref() }),
            // SAFETY: a Set entry's body owns a Set.
            Kind::Set => ValueRef::Set(unsafe { self.boxed_ref() }),
            // SAFETY: a ZSet entry's body owns a ZSet.
            Kind::ZSet => ValueRef::ZSet(unsafe { self.boxed_ref() }),
        }
    }

    /// The value, to change in place.
    #[inline]
    pub fn value_mut(&mut self) -> ValueMut<'_> {
        match self.kind() {
            Kind::Str => ValueMut::Str(StrMut { entry: self }),
            Kind::HashSmall | Kind::HashTable => ValueMut::Hash(HashMut { entry: self }),
            // SAFETY: a List entry's body owns a List.
            Kind::List => ValueMut::List(unsafe { self.boxed_mut() }),
            // SAFETY: a Set entry's body owns a Set.
            Kind::Set => ValueMut::Set(unsafe { self.boxed_mut() }),
            // SAFETY: a ZSet entry's body owns a ZSet.
            Kind::ZSet => ValueMut::ZSet(unsafe { self.boxed_mut() }),
        }
    }

    fn hash(&self) -> HashRef<'_> {
        match self.kind() {
            // SAFETY: a HashTable entry's body owns a Table.
            Kind::HashTable => HashRef::Table(unsafe { self.boxed_ref() }),
            _ => {
                debug_assert_eq!(self.kind(), Kind::HashSmall);
                HashRef::Small(self.body())
            }
        }
    }

    fn hash_table_mut(&mut self) -> &mut Table {
        assert_eq!(self.kind(), Kind::HashTable);
        // SAFETY: a HashTable entry's body owns a Table (checked above).
        unsafe { self.boxed_mut() }
    }

    /// A copy of the value.
    pub fn to_value(&self) -> Value {
        self.value().to_value()
    }

    /// The value, moved out (a boxed one without copying).
    pub fn into_value(mut self) -> Value {
        let kind = self.kind();
        if !kind.is_boxed() {
            return self.to_value();
        }
        let raw = self.boxed();
        // The value leaves the entry, which then frees only its block.
        self.set_kind(Kind::Str);
        // SAFETY: a boxed body owns a value of its kind's type; the entry gave it up above.
        match unsafe { take_boxed(kind, raw) } {
            Some(v) => v,
            None => Value::Str(Vec::new()),
        }
    }

    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        self.value().type_name()
    }

    /// The encoding OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        self.value().encoding()
    }

    /// Bytes of the entry's block (its allocation's size class).
    pub fn block_bytes(&self) -> usize {
        self.shape().block_bytes()
    }

    /// Bytes the value holds outside the block (a boxed value's own allocations).
    pub fn boxed_bytes(&self) -> usize {
        if self.kind().is_boxed() { self.value().heap_bytes() } else { 0 }
    }

    #[inline]
    fn access_ms(&self) -> u32 {
        // SAFETY: the access time is a u32 of the header.
        unsafe { self.block.as_ptr().add(ACCESS_AT).cast::<u32>().read_unaligned() }
    }

    #[inline]
    fn set_access_ms(&mut self, ms: u32) {
        // SAFETY: as for `access_ms`.
        unsafe { self.block.as_ptr().add(ACCESS_AT).cast::<u32>().write_unaligned(ms) }
    }

    fn lfu(&self) -> u8 {
        // SAFETY: the LFU counter is a byte of the header.
        unsafe { self.block.as_ptr().add(LFU_AT).read() }
    }

    fn set_lfu(&mut self, counter: u8) {
        // SAFETY: as for `lfu`.
        unsafe { self.block.as_ptr().add(LFU_AT).write(counter) }
    }

    /// Milliseconds since the key was last read or written (modulo 2^32 ms, 49 days).
    pub fn idle_ms(&self, now: UnixMs) -> u64 {
        (now as u32).wrapping_sub(self.access_ms()) as u64
    }

    /// Sets the time since the last access (RESTORE IDLETIME).
    pub fn set_idle_ms(&mut self, now: UnixMs, idle_ms: u64) {
        self.set_access_ms(now.saturating_sub(idle_ms) as u32);
    }

    /// Sets the access-frequency counter (RESTORE FREQ).
    pub fn set_frequency(&mut self, freq: u8) {
        self.set_lfu(freq);
    }

    /// Seconds since the key was last read or written.
    pub fn idle_seconds(&self, now: UnixMs) -> u64 {
        self.idle_ms(now) / 1000
    }

    /// The access-frequency counter after decay for the time since the last
    /// access (one step per LFU_DECAY_MINUTES), as Redis's LFUDecrAndReturn.
    pub fn frequency(&self, now: UnixMs) -> u8 {
        let idle = self.idle_ms(now);
        if idle < 60_000 * LFU_DECAY_MINUTES {
            return self.lfu();
        }
        let periods = idle / 60_000 / LFU_DECAY_MINUTES;
        self.lfu().saturating_sub(periods.min(255) as u8)
    }

    /// Records an access: the LRU clock always, and under an LFU policy
    /// (`rng` given) Redis's logarithmic LFU increment (probability
    /// 1 / ((counter - 5) * 10 + 1)).
    #[inline]
    pub(crate) fn touch(&mut self, now: UnixMs, rng: Option<&mut u64>) {
        let Some(rng) = rng else {
            self.set_access_ms(now as u32);
            return;
        };
        let counter = self.frequency(now);
        self.set_access_ms(now as u32);
        let base = counter.saturating_sub(LFU_INIT) as u64;
        // xorshift64: a cheap, good-enough coin for the logarithmic counter.
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let hit = counter < 255 && (base == 0 || *rng % (base * LFU_LOG_FACTOR + 1) == 0);
        self.set_lfu(counter + hit as u8);
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.drop_boxed();
        let layout = self.shape().layout();
        // SAFETY: the block was allocated with this layout (the invariant)
        // and is not used again.
        unsafe { alloc::dealloc(self.block.as_ptr(), layout) };
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("expire_at", &self.expire_at())
            .field("value", &self.value())
            .finish()
    }
}

/// The value of an entry, to change in place.
pub enum ValueMut<'a> {
    /// A string.
    Str(StrMut<'a>),
    /// A hash.
    Hash(HashMut<'a>),
    /// A list.
    List(&'a mut List),
    /// A set.
    Set(&'a mut Set),
    /// A sorted set.
    ZSet(&'a mut ZSet),
}

/// A string stored in an entry.
pub struct StrMut<'a> {
    entry: &'a mut Entry,
}

impl StrMut<'_> {
    /// The string's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        self.entry.body()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.entry.shape().body_len
    }

    /// True for the empty string.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the string, keeping the key's expiry.
    pub fn set(&mut self, bytes: &[u8]) {
        let len = self.len();
        self.entry.splice_body(0..len, &[bytes]);
    }

    /// Appends `bytes` (APPEND).
    pub fn append(&mut self, bytes: &[u8]) {
        let len = self.len();
        self.entry.splice_body(len..len, &[bytes]);
    }

    /// Overwrites the string from `offset` with `bytes`, zero-padding any
    /// gap past its end (SETRANGE).
    pub fn write_at(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len()).unwrap_or_else(|| too_large());
        if end > self.len() {
            self.entry.grow_body_zeroed(end);
        }
        self.entry.body_mut()[offset..end].copy_from_slice(bytes);
    }
}

/// A hash stored in an entry: a small one packed in the entry's own block,
/// or a table it points to.
pub struct HashMut<'a> {
    entry: &'a mut Entry,
}

impl HashMut<'_> {
    /// The hash, read-only.
    #[inline]
    pub fn view(&self) -> HashRef<'_> {
        self.entry.hash()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.view().len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.view().is_empty()
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.view().get(field)
    }

    /// The fields and values, in storage order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.view().iter()
    }

    /// The field at position `i` of the storage order.
    pub fn nth(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.view().nth(i)
    }

    /// Sets `field` to `value`; true when the field is new. A small hash
    /// that would outgrow the small encoding becomes a table.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        if self.entry.kind() == Kind::HashSmall {
            if let Some(added) = hash::packed_insert(&mut *self.entry, field, value) {
                return added;
            }
            let table = Box::new(hash::packed_to_table(self.entry.body()));
            let expire_at = self.entry.expire_at();
            self.entry.set_body(Kind::HashTable, Body::Boxed(Box::into_raw(table).cast()), expire_at);
        }
        self.entry.hash_table_mut().insert(field.into(), value.into()).is_none()
    }

    /// Removes `field`; true when it existed.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.entry.kind() == Kind::HashSmall {
            hash::packed_remove(&mut *self.entry, field)
        } else {
            self.entry.hash_table_mut().remove(field).is_some()
        }
    }
}

impl Packed for Entry {
    fn bytes(&self) -> &[u8] {
        self.body()
    }

    fn splice(&mut self, range: Range<usize>, parts: &[&[u8]]) {
        self.splice_body(range, parts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::End;

    const NOW: UnixMs = 1_000_000;

    fn str_of(e: &Entry) -> Vec<u8> {
        match e.value() {
            ValueRef::Str(s) => s.to_vec(),
            _ => panic!("not a string"),
        }
    }

    #[test]
    fn prefetch_leaves_entries_as_they_were() {
        // Blocks shorter and longer than what is prefetched, one byte long
        // included, so the second address lies inside and past the block.
        for len in [0usize, 1, 40, 63, 64, 65, 300] {
            let value = vec![b'v'; len];
            let e = Entry::new_str(b"k", &value, NO_EXPIRE, NOW);
            e.prefetch();
            assert_eq!(e.key(), b"k");
            assert_eq!(str_of(&e), value);
        }
    }

    #[test]
    fn boxed_values_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Table>();
        check::<List>();
        check::<Set>();
        check::<ZSet>();
        check::<Entry>();
        assert_eq!(size_of::<Entry>(), size_of::<usize>());
        assert_eq!(size_of::<Option<Entry>>(), size_of::<usize>());
    }

    #[test]
    fn a_small_string_takes_one_small_block() {
        let e = Entry::new_str(&[b'k'; 16], &[b'v'; 32], NO_EXPIRE, NOW);
        // 8-byte header + 16 + 32 = 56 bytes, in mimalloc's 64-byte class.
        assert_eq!(e.block_bytes(), 64);
        assert_eq!(e.key(), &[b'k'; 16]);
        assert!(matches!(e.value(), ValueRef::Str(v) if v == [b'v'; 32]));
        assert_eq!((e.expire_at(), e.idle_ms(NOW), e.frequency(NOW)), (NO_EXPIRE, 0, LFU_INIT));
        assert_eq!(e.encoding(), "embstr");
        assert_eq!(e.boxed_bytes(), 0);
        let with_ttl = Entry::new_str(b"k", b"v", NOW + 5, NOW);
        assert_eq!((with_ttl.expire_at(), with_ttl.block_bytes()), (NOW + 5, 32));
        assert!(!with_ttl.is_expired(NOW + 4) && with_ttl.is_expired(NOW + 5));
    }

    #[test]
    fn every_edge_of_the_header_forms_round_trips() {
        // Lengths on both sides of the narrow header's limit, with and without TTL.
        let sizes = [0, 1, 31, 255, 256, 1000, 70_000];
        for &k in &[0usize, 1, 255, 256, 300] {
            for &v in &sizes {
                for ttl in [NO_EXPIRE, NOW + 1] {
                    let key: Vec<u8> = (0..k).map(|i| i as u8).collect();
                    let val: Vec<u8> = (0..v).map(|i| (i * 7) as u8).collect();
                    let mut e = Entry::new_str(&key, &val, ttl, NOW);
                    assert_eq!((e.key(), str_of(&e), e.expire_at()), (&key[..], val.clone(), ttl));
                    assert!(e.block_bytes() >= k + v + NARROW_HEADER_BYTES);
                    // Toggle the TTL both ways; key and value survive the moves.
                    e.set_expire_at(NOW + 9);
                    assert_eq!((e.key(), str_of(&e), e.expire_at()), (&key[..], val.clone(), NOW + 9));
                    e.set_expire_at(NO_EXPIRE);
                    assert_eq!((e.key(), str_of(&e), e.expire_at()), (&key[..], val.clone(), NO_EXPIRE));
                }
            }
        }
    }

    #[test]
    fn strings_grow_shrink_and_keep_header_fields() {
        let mut e = Entry::new_str(b"key", b"", NOW + 100, NOW);
        e.set_frequency(42);
        e.set_idle_ms(NOW, 7);
        let mut model = Vec::new();
        // Appends cross the narrow/wide boundary and several size classes.
        for i in 0..600u32 {
            let piece = i.to_le_bytes();
            let ValueMut::Str(mut s) = e.value_mut() else { panic!() };
            s.append(&piece[..(i % 4) as usize]);
            model.extend_from_slice(&piece[..(i % 4) as usize]);
            assert_eq!(s.as_bytes(), &model[..]);
        }
        let ValueMut::Str(mut s) = e.value_mut() else { panic!() };
        s.write_at(2000, b"end");
        model.resize(2000, 0);
        model.extend_from_slice(b"end");
        assert_eq!(s.as_bytes(), &model[..]);
        s.write_at(1, b"xy");
        model[1..3].copy_from_slice(b"xy");
        assert_eq!(s.as_bytes(), &model[..]);
        s.set(b"short");
        assert_eq!(s.as_bytes(), b"short");
        assert_eq!(e.block_bytes(), 32, "shrinks back to a small block");
        assert_eq!((e.key(), e.expire_at(), e.frequency(NOW), e.idle_ms(NOW)), (&b"key"[..], NOW + 100, 42, 7));
    }

    #[test]
    fn boxed_values_are_owned_moved_and_freed() {
        let mut list = List::default();
        list.push(End::Right, b"a");
        let mut e = Entry::new(b"l", Value::List(Box::new(list)), NO_EXPIRE, NOW);
        assert_eq!(e.type_name(), "list");
        assert!(e.boxed_bytes() > 0);
        match e.value_mut() {
            ValueMut::List(l) => l.push(End::Right, b"b"),
            _ => panic!("not a list"),
        }
        // A TTL moves the block; the list pointer moves with it.
        e.set_expire_at(NOW + 1);
        let ValueRef::List(l) = e.value() else { panic!() };
        assert_eq!(l.len(), 2);
        // Overwriting with a string frees the list (leaks show under Miri / ASan).
        e.set_str(b"now a string", NO_EXPIRE);
        assert_eq!((e.type_name(), e.expire_at()), ("string", NO_EXPIRE));
        e.set_value(Value::Set(Box::default()), NOW + 2);
        assert_eq!(e.type_name(), "set");
        let copy = e.to_value();
        assert_eq!(e.into_value(), copy);
        let z = Entry::new(b"z", Value::ZSet(Box::default()), NO_EXPIRE, NOW);
        drop(z);
    }

    #[test]
    fn small_hashes_live_in_the_block_and_become_tables() {
        let mut e = Entry::new(b"h", Value::Hash(Hash::default()), NOW + 50, NOW);
        let mut model = Hash::default();
        for i in 0..200u32 {
            let (f, v) = (format!("field{}", i % 190), format!("value-{i}"));
            let ValueMut::Hash(mut h) = e.value_mut() else { panic!() };
            assert_eq!(h.insert(f.as_bytes(), v.as_bytes()), model.insert(f.as_bytes(), v.as_bytes()));
            if i == 10 {
                assert_eq!(h.view().encoding(), "listpack");
                assert!(!e.kind().is_boxed());
            }
            if i % 5 == 0 {
                let ValueMut::Hash(mut h) = e.value_mut() else { panic!() };
                let gone = format!("field{}", i / 2);
                assert_eq!(h.remove(gone.as_bytes()), model.remove(gone.as_bytes()));
            }
            assert!(matches!(e.value(), ValueRef::Hash(h) if h.len() == model.len()));
            assert_eq!(e.encoding(), model.encoding());
        }
        assert_eq!(e.encoding(), "hashtable");
        assert_eq!(e.to_value(), Value::Hash(model));
        assert_eq!(e.expire_at(), NOW + 50);
        // A long value converts a small hash at once.
        let mut e = Entry::new(b"h", Value::Hash(Hash::default()), NO_EXPIRE, NOW);
        let ValueMut::Hash(mut h) = e.value_mut() else { panic!() };
        assert!(h.insert(b"f", b"v"));
        assert!(h.insert(b"g", &[b'x'; hash::SMALL_VALUE_BYTES_MAX + 1]));
        assert_eq!((h.view().encoding(), h.get(b"f")), ("hashtable", Some(&b"v"[..])));
    }

    #[test]
    fn replacing_a_small_hash_value_in_place_keeps_the_block() {
        let mut e = Entry::new(b"h", Value::Hash(Hash::default()), NO_EXPIRE, NOW);
        let ValueMut::Hash(mut h) = e.value_mut() else { panic!() };
        for i in 0..10 {
            h.insert(format!("field{i}").as_bytes(), &[i as u8; 32]);
        }
        let block = e.block;
        let ValueMut::Hash(mut h) = e.value_mut() else { panic!() };
        assert!(!h.insert(b"field3", &[9; 32]));
        assert_eq!(h.get(b"field3"), Some(&[9u8; 32][..]));
        assert_eq!(e.block, block, "same-size replacement is done in place");
        // 24-byte wide header + 1-byte key + 10 * (1 + 6 + 1 + 32) = 425 bytes, class 448.
        assert_eq!(e.block_bytes(), 448);
    }
}
