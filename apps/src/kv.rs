//! The replicated key-value store: the state machine every replica applies in log order.
//!
//! - Operations: get, put, delete, compare-and-swap. Reads go through the log like writes,
//!   so every operation is linearizable (it takes effect at its slot).
//! - Exactly-once client sessions: every request carries (client, seq). A session remembers
//!   its highest applied seq and that reply; a retried request (same seq) gets the cached
//!   reply and is not applied again; an older seq gets `STALE`. Clients have one request
//!   outstanding at a time (the history format's rule), so one cached reply suffices.
//!   At most `max_sessions` sessions are kept; the least recently used is evicted (its
//!   client loses exactly-once for requests older than the eviction: documented limit).
//! - Limits: keys up to `MAX_KEY_BYTES`, values up to `MAX_VALUE_BYTES`; larger requests get
//!   `TOO_LARGE` (checked before proposing, and again when applying).
//!
//! Request encoding (little-endian), carried as the client command of a `ClientRequest`:
//! `op u8 | key_len u16 | key | [value_len u32 | value] | [has_expected u8 | exp_len u32 | expected]`
//! - get (1): key; put (2): key, value; delete (3): key; cas (4): key, expected (flag 0 =
//!   "must be absent"), value.
//!
//! Reply body: `status u8 | [flag u8 | len u32 | bytes]` — get: flag 1 + value, or flag 0
//! (absent); delete: flag = existed; cas: flag = swapped; put: nothing.

use std::collections::{BTreeMap, HashMap};

/// The hasher of the store's maps: aHash with per-process random keys. Keys and client ids
/// come from the network, so the hasher must be keyed (an attacker who could predict it
/// could send colliding keys and turn every lookup into a scan); aHash is keyed and built
/// for that, like std's SipHash-1-3, at a fraction of its cost for short keys (SipHash was
/// ~3% of the node's CPU here at 780k commands/s). Iteration order never matters: snapshots
/// sort, session eviction picks the unique least-recently-used entry.
pub type KvHasher = ahash::RandomState;
type Map<K, V> = HashMap<K, V, KvHasher>;
/// The store: keys inline when short ([`Key`]), values on the heap.
type Store = Map<Key, Vec<u8>>;

/// Keys up to this many bytes are kept inside the hash table's bucket.
pub const INLINE_KEY_BYTES: usize = 22;

/// A stored key: inline when short, so a lookup compares it in the bucket it already
/// loaded instead of following a pointer to another cache line. Hashes and compares as
/// its bytes (`Borrow<[u8]>`), so the map is looked up with a plain `&[u8]`.
#[derive(Clone, Debug)]
enum Key {
    Inline { len: u8, bytes: [u8; INLINE_KEY_BYTES] },
    Heap(Box<[u8]>),
}

impl Key {
    fn new(k: &[u8]) -> Key {
        if k.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0u8; INLINE_KEY_BYTES];
            bytes[..k.len()].copy_from_slice(k);
            Key::Inline { len: k.len() as u8, bytes }
        } else {
            Key::Heap(k.into())
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Exactly what `[u8]` hashes, as `Borrow` requires.
        self.as_slice().hash(state)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for Key {}

pub const MAX_KEY_BYTES: usize = 128;
pub const MAX_VALUE_BYTES: usize = 1024;
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

pub mod status {
    pub const OK: u8 = 0;
    pub const TOO_LARGE: u8 = 3;
    pub const MALFORMED: u8 = 4;
    /// The request's seq is below the session's last applied seq: a stale retry.
    pub const STALE: u8 = 5;
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Get { key: &'a [u8] },
    Put { key: &'a [u8], value: &'a [u8] },
    Delete { key: &'a [u8] },
    Cas { key: &'a [u8], expected: Option<&'a [u8]>, value: &'a [u8] },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpError {
    Malformed,
    TooLarge,
}

impl OpError {
    pub fn status(self) -> u8 {
        match self {
            OpError::Malformed => status::MALFORMED,
            OpError::TooLarge => status::TOO_LARGE,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpError> {
        if self.buf.len() < n {
            return Err(OpError::Malformed);
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, OpError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, OpError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, OpError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn key(&mut self) -> Result<&'a [u8], OpError> {
        let n = self.u16()? as usize;
        if n > MAX_KEY_BYTES {
            return Err(OpError::TooLarge);
        }
        self.take(n)
    }
    fn value(&mut self) -> Result<&'a [u8], OpError> {
        let n = self.u32()? as usize;
        if n > MAX_VALUE_BYTES {
            return Err(OpError::TooLarge);
        }
        self.take(n)
    }
}

impl<'a> Op<'a> {
    /// Parses a request; never panics.
    pub fn parse(buf: &'a [u8]) -> Result<Op<'a>, OpError> {
        let mut r = Reader { buf };
        let op = match r.u8()? {
            1 => Op::Get { key: r.key()? },
            2 => {
                let key = r.key()?;
                Op::Put { key, value: r.value()? }
            }
            3 => Op::Delete { key: r.key()? },
            4 => {
                let key = r.key()?;
                let expected = match r.u8()? {
                    0 => None,
                    1 => Some(r.value()?),
                    _ => return Err(OpError::Malformed),
                };
                Op::Cas { key, expected, value: r.value()? }
            }
            _ => return Err(OpError::Malformed),
        };
        if !r.buf.is_empty() {
            return Err(OpError::Malformed);
        }
        Ok(op)
    }

    /// Appends the encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn key(out: &mut Vec<u8>, k: &[u8]) {
            out.extend_from_slice(&(k.len() as u16).to_le_bytes());
            out.extend_from_slice(k);
        }
        fn val(out: &mut Vec<u8>, v: &[u8]) {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        match self {
            Op::Get { key: k } => {
                out.push(1);
                key(out, k);
            }
            Op::Put { key: k, value } => {
                out.push(2);
                key(out, k);
                val(out, value);
            }
            Op::Delete { key: k } => {
                out.push(3);
                key(out, k);
            }
            Op::Cas { key: k, expected, value } => {
                out.push(4);
                key(out, k);
                match expected {
                    None => out.push(0),
                    Some(e) => {
                        out.push(1);
                        val(out, e);
                    }
                }
                val(out, value);
            }
        }
    }

    pub fn key(&self) -> &'a [u8] {
        match self {
            Op::Get { key } | Op::Put { key, .. } | Op::Delete { key } | Op::Cas { key, .. } => key,
        }
    }
}

/// A decoded reply body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// put
    Done,
    /// get: the value, or None if absent
    Value(Option<Vec<u8>>),
    /// delete: existed; cas: swapped
    Flag(bool),
    /// Anything but OK.
    Error(u8),
}

impl Reply {
    pub fn parse(body: &[u8]) -> Result<Reply, OpError> {
        let mut r = Reader { buf: body };
        let st = r.u8()?;
        if st != status::OK {
            return Ok(Reply::Error(st));
        }
        if r.buf.is_empty() {
            return Ok(Reply::Done);
        }
        let flag = r.u8()?;
        if r.buf.is_empty() {
            return Ok(Reply::Flag(flag == 1));
        }
        let n = r.u32()? as usize;
        let v = r.take(n)?;
        Ok(Reply::Value(if flag == 1 { Some(v.to_vec()) } else { None }))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Session {
    last_seq: u64,
    reply: Vec<u8>,
    last_used: u64,
}

/// The store and its sessions.
#[derive(Debug)]
pub struct KvStore {
    map: Store,
    sessions: Map<u64, Session>,
    max_sessions: usize,
    /// Applied operations (log position of the store, for snapshots and LRU age).
    applied: u64,
    /// Operations applied more than once would show here: retries answered from the cache.
    pub duplicates_suppressed: u64,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(DEFAULT_MAX_SESSIONS)
    }
}

impl KvStore {
    pub fn new(max_sessions: usize) -> KvStore {
        KvStore {
            map: Map::default(),
            sessions: Map::default(),
            max_sessions: max_sessions.max(1),
            applied: 0,
            duplicates_suppressed: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// A digest of the keys and values (not the sessions), the same on every replica that
    /// applied the same log, whatever the hash table's order: the sum of an FNV-1a hash per
    /// (key, value). For checking that replicas converged (the nodes print it at exit).
    pub fn digest(&self) -> u64 {
        let fnv = |h: u64, b: &[u8]| {
            b.iter().fold(h, |h, x| (h ^ u64::from(*x)).wrapping_mul(0x0000_0100_0000_01b3))
        };
        self.map.iter().fold(0u64, |acc, (k, v)| {
            let h = fnv(0xcbf2_9ce4_8422_2325, k.as_slice());
            let h = fnv(fnv(h, &(k.as_slice().len() as u64).to_le_bytes()), v);
            acc.wrapping_add(h)
        })
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(key).map(Vec::as_slice)
    }

    /// Applies one request of `client` with sequence number `seq`; writes the reply body
    /// into `reply` (cleared first). One session lookup and one key lookup per request in
    /// the common case; no allocation unless a key, a session or a larger value is new.
    pub fn apply(&mut self, client: u64, seq: u64, request: &[u8], reply: &mut Vec<u8>) {
        reply.clear();
        self.applied += 1;
        let applied = self.applied;
        match self.sessions.get_mut(&client) {
            Some(s) => {
                s.last_used = applied;
                if seq == s.last_seq {
                    self.duplicates_suppressed += 1;
                    reply.extend_from_slice(&s.reply);
                    return;
                }
                if seq < s.last_seq {
                    self.duplicates_suppressed += 1;
                    reply.push(status::STALE);
                    return;
                }
                run(&mut self.map, request, reply);
                s.last_seq = seq;
                s.reply.clear();
                s.reply.extend_from_slice(reply);
            }
            None => {
                run(&mut self.map, request, reply);
                self.new_session(client, seq, reply);
            }
        }
    }

    fn new_session(&mut self, client: u64, seq: u64, reply: &[u8]) {
        if self.sessions.len() >= self.max_sessions {
            if let Some((&old, _)) = self.sessions.iter().min_by_key(|(_, s)| s.last_used) {
                self.sessions.remove(&old);
            }
        }
        let s = Session { last_seq: seq, reply: reply.to_vec(), last_used: self.applied };
        self.sessions.insert(client, s);
    }

    /// Serialises the whole state (map and sessions) deterministically.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"KVS1");
        out.extend_from_slice(&self.applied.to_le_bytes());
        let sorted: BTreeMap<_, _> = self.map.iter().map(|(k, v)| (k.as_slice(), v)).collect();
        out.extend_from_slice(&(sorted.len() as u64).to_le_bytes());
        for (k, v) in sorted {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        let sessions: BTreeMap<_, _> = self.sessions.iter().collect();
        out.extend_from_slice(&(sessions.len() as u64).to_le_bytes());
        for (c, s) in sessions {
            out.extend_from_slice(&c.to_le_bytes());
            out.extend_from_slice(&s.last_seq.to_le_bytes());
            out.extend_from_slice(&s.last_used.to_le_bytes());
            out.extend_from_slice(&(s.reply.len() as u32).to_le_bytes());
            out.extend_from_slice(&s.reply);
        }
        out
    }

    /// Replaces the state with a snapshot; never panics on bad input.
    pub fn install(&mut self, snap: &[u8]) -> Result<(), OpError> {
        let mut r = Reader { buf: snap };
        if r.take(4)? != b"KVS1" {
            return Err(OpError::Malformed);
        }
        let u64_of = |r: &mut Reader<'_>| -> Result<u64, OpError> {
            let b = r.take(8)?;
            Ok(u64::from_le_bytes(b.try_into().map_err(|_| OpError::Malformed)?))
        };
        let applied = u64_of(&mut r)?;
        let n = u64_of(&mut r)?;
        let mut map = Map::default();
        for _ in 0..n {
            let kl = r.u32()? as usize;
            let k = r.take(kl)?;
            let vl = r.u32()? as usize;
            map.insert(Key::new(k), r.take(vl)?.to_vec());
        }
        let ns = u64_of(&mut r)?;
        let mut sessions = Map::default();
        for _ in 0..ns {
            let c = u64_of(&mut r)?;
            let last_seq = u64_of(&mut r)?;
            let last_used = u64_of(&mut r)?;
            let rl = r.u32()? as usize;
            let reply = r.take(rl)?.to_vec();
            sessions.insert(c, Session { last_seq, reply, last_used });
        }
        if !r.buf.is_empty() {
            return Err(OpError::Malformed);
        }
        self.map = map;
        self.sessions = sessions;
        self.applied = applied;
        Ok(())
    }
}

/// Parses and executes one request against `map`; the reply starts with the status byte.
fn run(map: &mut Store, request: &[u8], reply: &mut Vec<u8>) {
    match Op::parse(request) {
        Err(e) => reply.push(e.status()),
        Ok(op) => execute(map, &op, reply),
    }
}

fn execute(map: &mut Store, op: &Op<'_>, reply: &mut Vec<u8>) {
    reply.push(status::OK);
    match *op {
        Op::Get { key } => match map.get(key) {
            Some(v) => {
                reply.push(1);
                reply.extend_from_slice(&(v.len() as u32).to_le_bytes());
                reply.extend_from_slice(v);
            }
            None => {
                reply.push(0);
                reply.extend_from_slice(&0u32.to_le_bytes());
            }
        },
        Op::Put { key, value } => put(map, key, value),
        Op::Delete { key } => reply.push(map.remove(key).is_some() as u8),
        Op::Cas { key, expected, value } => {
            let swap = map.get(key).map(Vec::as_slice) == expected;
            if swap {
                put(map, key, value);
            }
            reply.push(swap as u8);
        }
    }
}

/// Overwrites in place when the key exists (no allocation unless the value grows).
fn put(map: &mut Store, key: &[u8], value: &[u8]) {
    match map.get_mut(key) {
        Some(v) => {
            v.clear();
            v.extend_from_slice(value);
        }
        None => {
            map.insert(Key::new(key), value.to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: Op<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        op.encode(&mut v);
        v
    }

    fn run(kv: &mut KvStore, client: u64, seq: u64, op: Op<'_>) -> Reply {
        let mut out = Vec::new();
        kv.apply(client, seq, &req(op), &mut out);
        Reply::parse(&out).unwrap()
    }

    #[test]
    fn operations() {
        let mut kv = KvStore::default();
        assert_eq!(run(&mut kv, 1, 1, Op::Get { key: b"x" }), Reply::Value(None));
        assert_eq!(run(&mut kv, 1, 2, Op::Put { key: b"x", value: b"1" }), Reply::Done);
        assert_eq!(run(&mut kv, 1, 3, Op::Get { key: b"x" }), Reply::Value(Some(b"1".to_vec())));
        let cas = Op::Cas { key: b"x", expected: Some(b"2"), value: b"3" };
        assert_eq!(run(&mut kv, 1, 4, cas), Reply::Flag(false));
        let cas = Op::Cas { key: b"x", expected: Some(b"1"), value: b"3" };
        assert_eq!(run(&mut kv, 1, 5, cas), Reply::Flag(true));
        let cas = Op::Cas { key: b"y", expected: None, value: b"9" };
        assert_eq!(run(&mut kv, 1, 6, cas), Reply::Flag(true));
        assert_eq!(run(&mut kv, 1, 7, Op::Delete { key: b"x" }), Reply::Flag(true));
        assert_eq!(run(&mut kv, 1, 8, Op::Delete { key: b"x" }), Reply::Flag(false));
        assert_eq!(kv.get(b"y"), Some(&b"9"[..]));
    }

    #[test]
    fn retries_are_applied_once() {
        let mut kv = KvStore::default();
        let put = req(Op::Cas { key: b"c", expected: None, value: b"1" });
        let mut a = Vec::new();
        let mut b = Vec::new();
        kv.apply(7, 1, &put, &mut a);
        kv.apply(7, 1, &put, &mut b); // the retry, decided in a later slot
        assert_eq!(a, b, "the retry gets the cached reply");
        assert_eq!(Reply::parse(&b).unwrap(), Reply::Flag(true));
        assert_eq!(kv.duplicates_suppressed, 1);
        let mut c = Vec::new();
        kv.apply(7, 0, &put, &mut c);
        assert_eq!(Reply::parse(&c).unwrap(), Reply::Error(status::STALE));
    }

    #[test]
    fn limits_and_malformed() {
        let mut kv = KvStore::default();
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        let mut out = Vec::new();
        kv.apply(1, 1, &req(Op::Put { key: b"k", value: &big }), &mut out);
        assert_eq!(Reply::parse(&out).unwrap(), Reply::Error(status::TOO_LARGE));
        let long_key = vec![1u8; MAX_KEY_BYTES + 1];
        kv.apply(1, 2, &req(Op::Get { key: &long_key }), &mut out);
        assert_eq!(Reply::parse(&out).unwrap(), Reply::Error(status::TOO_LARGE));
        for bad in [&[][..], &[9u8][..], &[1u8, 5, 0][..], &[2u8, 1, 0, b'k', 9, 0, 0, 0][..]] {
            kv.apply(1, 3, bad, &mut out);
            assert_eq!(Reply::parse(&out).unwrap(), Reply::Error(status::MALFORMED), "{bad:?}");
            kv.apply(2, 0, bad, &mut out);
        }
        // Random garbage never panics.
        let mut x = 0x1234_5678_9abc_def0u64;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 24) as usize;
            let buf: Vec<u8> = (0..len).map(|j| (x >> (j % 8 * 8)) as u8).collect();
            kv.apply(100 + i, 1, &buf, &mut out);
            let _ = Reply::parse(&buf);
            let _ = Op::parse(&buf);
        }
        assert!(kv.install(b"garbage").is_err());
    }

    #[test]
    fn short_and_long_keys() {
        let mut kv = KvStore::default();
        let long = vec![b'L'; INLINE_KEY_BYTES + 1];
        let edge = vec![b'E'; INLINE_KEY_BYTES];
        for (i, k) in [&b""[..], b"k1", &edge, &long].into_iter().enumerate() {
            let v = [i as u8; 3];
            assert_eq!(
                run(&mut kv, 1, 1 + 2 * i as u64, Op::Put { key: k, value: &v }),
                Reply::Done
            );
            assert_eq!(kv.get(k), Some(&v[..]), "{k:?}");
            let got = run(&mut kv, 1, 2 + 2 * i as u64, Op::Get { key: k });
            assert_eq!(got, Reply::Value(Some(v.to_vec())));
        }
        assert_eq!(kv.len(), 4);
        assert_eq!(kv.get(&long[..INLINE_KEY_BYTES]), None);
        let mut other = KvStore::default();
        other.install(&kv.snapshot()).unwrap();
        assert_eq!(other.get(&long), Some(&[3u8; 3][..]));
        assert_eq!(other.snapshot(), kv.snapshot());
    }

    #[test]
    fn snapshot_round_trip() {
        let mut kv = KvStore::new(4);
        for i in 0..10u64 {
            let k = format!("k{i}");
            run(&mut kv, i, 1, Op::Put { key: k.as_bytes(), value: b"v" });
        }
        assert_eq!(kv.sessions.len(), 4, "sessions are bounded");
        let snap = kv.snapshot();
        let mut other = KvStore::new(4);
        other.install(&snap).unwrap();
        assert_eq!(other.snapshot(), snap);
        assert_eq!(other.get(b"k3"), Some(&b"v"[..]));
        // Truncated snapshots are refused without panicking.
        for cut in 0..snap.len() {
            assert!(KvStore::new(4).install(&snap[..cut]).is_err());
        }
    }
}
