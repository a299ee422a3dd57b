//! Byte layout of segment headers and records (docs/storage-format.md has the tables).
//!
//! All integers are little-endian. A record is a 32-byte header followed by its payload,
//! zero-padded to a multiple of 8 bytes; the CRC32C in the first four bytes covers the rest
//! of the header and the padded payload, so a corrupted length or sequence number fails the
//! check like a corrupted value does.
//!
//! Panic contract: `parse_header`, `check_crc` and `decode_body` never panic on any input of
//! the lengths they ask for; `encode` never panics (the caller bounds value lengths).

use paxos_core::{Ballot, ReplicaId, Slot};

/// First 8 bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"PXACCLOG";
/// On-disk format version, in every segment header and record header.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes of the segment header; the first record starts here.
pub const SEGMENT_HEADER_LEN: u64 = 64;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 32;
/// Records start at multiples of this (the recovery scan steps by it).
pub const RECORD_ALIGN: usize = 8;
/// Payload bytes of an Accept record before the value (slot, ballot).
pub const ACCEPT_PREFIX_LEN: usize = 16;
/// Total bytes of a Commit record (header + 16-byte payload).
pub const COMMIT_RECORD_LEN: u64 = (RECORD_HEADER_LEN + 16) as u64;
/// Total bytes of the state snapshot that opens every segment (Promise, Trim, Voting).
pub const SNAPSHOT_LEN: u64 = 3 * (RECORD_HEADER_LEN + 8) as u64;

/// Record kinds (byte 24 of the header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Promise = 1,
    Accept = 2,
    Trim = 3,
    Voting = 4,
    /// Closes a sync batch: written last in every `sync`, it is the commit point.
    Commit = 5,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Promise,
            2 => Kind::Accept,
            3 => Kind::Trim,
            4 => Kind::Voting,
            5 => Kind::Commit,
            _ => return None,
        })
    }
}

/// A decoded record. `Accept` borrows its value from the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    Promise {
        ballot: Ballot,
    },
    Accept {
        slot: Slot,
        ballot: Ballot,
        value: &'a [u8],
    },
    Trim {
        low: Slot,
    },
    Voting {
        voting: bool,
    },
    /// `batch`: the number of this sync since the log was created (the first is 1);
    /// `records`: how many records the batch holds before this one (segment snapshots
    /// included).
    Commit {
        batch: u64,
        records: u32,
    },
}

impl Record<'_> {
    pub fn kind(&self) -> Kind {
        match self {
            Record::Promise { .. } => Kind::Promise,
            Record::Accept { .. } => Kind::Accept,
            Record::Trim { .. } => Kind::Trim,
            Record::Voting { .. } => Kind::Voting,
            Record::Commit { .. } => Kind::Commit,
        }
    }

    /// Payload length (unpadded), as stored in the header.
    pub fn payload_len(&self) -> usize {
        match self {
            Record::Accept { value, .. } => ACCEPT_PREFIX_LEN + value.len(),
            Record::Commit { .. } => 16,
            _ => 8,
        }
    }

    /// Bytes this record occupies in a segment (header + padded payload).
    pub fn encoded_len(&self) -> u64 {
        (RECORD_HEADER_LEN + pad8(self.payload_len())) as u64
    }
}

/// The fixed fields of a record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub crc: u32,
    pub payload_len: u32,
    /// Log sequence number: +1 per record over the whole log, never reused.
    pub lsn: u64,
    /// The LSN of the last Commit record that a completed fdatasync covered when this record
    /// was appended (0: none yet). Recovery uses it to tell a torn tail from corruption.
    pub durable_lsn: u64,
    pub kind: Kind,
    /// Low 32 bits of the number of the segment the record was written into.
    pub segment: u32,
}

impl Header {
    /// Bytes from the start of the header to the end of the padded payload.
    pub fn record_len(&self) -> u64 {
        (RECORD_HEADER_LEN + pad8(self.payload_len as usize)) as u64
    }
}

/// `n` rounded up to a multiple of [`RECORD_ALIGN`].
pub fn pad8(n: usize) -> usize {
    (n + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

fn put_ballot(out: &mut Vec<u8>, b: Ballot) {
    out.extend_from_slice(&b.round.to_le_bytes());
    out.extend_from_slice(&b.leader.0.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
}

fn get_ballot(b: &[u8]) -> Ballot {
    Ballot::new(u32_at(b, 0), ReplicaId(u16::from_le_bytes([b[4], b[5]])))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Appends one encoded record to `out`. Returns its encoded length.
pub fn encode(out: &mut Vec<u8>, lsn: u64, durable_lsn: u64, segment: u64, rec: &Record) -> u64 {
    let start = out.len();
    let len = rec.payload_len();
    out.extend_from_slice(&[0; 4]); // crc, filled in below
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&durable_lsn.to_le_bytes());
    out.extend_from_slice(&[rec.kind() as u8, FORMAT_VERSION, 0, 0]);
    out.extend_from_slice(&(segment as u32).to_le_bytes());
    match *rec {
        Record::Promise { ballot } => put_ballot(out, ballot),
        Record::Accept { slot, ballot, value } => {
            out.extend_from_slice(&slot.0.to_le_bytes());
            put_ballot(out, ballot);
            out.extend_from_slice(value);
        }
        Record::Trim { low } => out.extend_from_slice(&low.0.to_le_bytes()),
        Record::Voting { voting } => out.extend_from_slice(&[voting as u8, 0, 0, 0, 0, 0, 0, 0]),
        Record::Commit { batch, records } => {
            out.extend_from_slice(&batch.to_le_bytes());
            out.extend_from_slice(&records.to_le_bytes());
            out.extend_from_slice(&[0; 4]);
        }
    }
    out.resize(start + RECORD_HEADER_LEN + pad8(len), 0);
    let crc = crc32c::crc32c(&out[start + 4..]);
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    (out.len() - start) as u64
}

/// Parses and sanity-checks a record header (not its CRC: that needs the payload).
/// `None` if the bytes cannot be the header of a record this code wrote with payloads of at
/// most `max_payload` bytes.
pub fn parse_header(b: &[u8; RECORD_HEADER_LEN], max_payload: u32) -> Option<Header> {
    let kind = Kind::from_u8(b[24])?;
    if b[25] != FORMAT_VERSION || b[26] != 0 || b[27] != 0 {
        return None;
    }
    let h = Header {
        crc: u32_at(b, 0),
        payload_len: u32_at(b, 4),
        lsn: u64_at(b, 8),
        durable_lsn: u64_at(b, 16),
        kind,
        segment: u32_at(b, 28),
    };
    let fixed = match kind {
        Kind::Accept => h.payload_len >= ACCEPT_PREFIX_LEN as u32 && h.payload_len <= max_payload,
        Kind::Commit => h.payload_len == 16,
        _ => h.payload_len == 8,
    };
    (fixed && h.lsn > h.durable_lsn).then_some(h)
}

/// Whether the CRC in `h` matches the header bytes and padded payload (`record` holds the
/// whole record: `h.record_len()` bytes).
/// Rewrites the `durable_lsn` of the encoded record at the start of `rec` (which holds at
/// least the whole record) and its checksum; returns the record's length.
pub(crate) fn restamp(rec: &mut [u8], durable_lsn: u64) -> usize {
    let len = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]) as usize;
    let total = RECORD_HEADER_LEN + pad8(len);
    rec[16..24].copy_from_slice(&durable_lsn.to_le_bytes());
    let crc = crc32c::crc32c(&rec[4..total]);
    rec[..4].copy_from_slice(&crc.to_le_bytes());
    total
}

pub fn check_crc(h: &Header, record: &[u8]) -> bool {
    record.len() as u64 == h.record_len() && crc32c::crc32c(&record[4..]) == h.crc
}

/// Decodes the payload of a record whose header and CRC have been checked. `None` if a field
/// holds a value this code never writes.
pub fn decode_body<'a>(h: &Header, record: &'a [u8]) -> Option<Record<'a>> {
    let p = &record[RECORD_HEADER_LEN..RECORD_HEADER_LEN + h.payload_len as usize];
    Some(match h.kind {
        Kind::Promise => Record::Promise { ballot: get_ballot(p) },
        Kind::Accept => Record::Accept {
            slot: Slot(u64_at(p, 0)),
            ballot: get_ballot(&p[8..]),
            value: &p[ACCEPT_PREFIX_LEN..],
        },
        Kind::Trim => Record::Trim { low: Slot(u64_at(p, 0)) },
        Kind::Voting => match p[0] {
            0 => Record::Voting { voting: false },
            1 => Record::Voting { voting: true },
            _ => return None,
        },
        Kind::Commit => Record::Commit { batch: u64_at(p, 0), records: u32_at(p, 8) },
    })
}

/// The fields of a segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Chosen at `create`; every segment of one log carries the same id.
    pub log_id: u64,
    /// The number in the file name.
    pub segment: u64,
    /// The segment's size limit in bytes (records never cross it).
    pub capacity: u64,
}

impl SegmentHeader {
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&SEGMENT_MAGIC);
        out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&self.log_id.to_le_bytes());
        out.extend_from_slice(&self.segment.to_le_bytes());
        out.extend_from_slice(&self.capacity.to_le_bytes());
        out.resize(start + SEGMENT_HEADER_LEN as usize - 4, 0);
        let crc = crc32c::crc32c(&out[start..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }

    /// `None` unless `b` holds a header this code wrote.
    pub fn parse(b: &[u8]) -> Option<SegmentHeader> {
        let n = SEGMENT_HEADER_LEN as usize;
        if b.len() < n || b[..8] != SEGMENT_MAGIC || b[8] != FORMAT_VERSION {
            return None;
        }
        if crc32c::crc32c(&b[..n - 4]) != u32_at(b, n - 4) {
            return None;
        }
        Some(SegmentHeader {
            log_id: u64_at(b, 16),
            segment: u64_at(b, 24),
            capacity: u64_at(b, 32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(buf: &[u8]) -> (Header, Record<'_>) {
        let h = parse_header(buf[..RECORD_HEADER_LEN].try_into().unwrap(), 1 << 20).unwrap();
        let rec = &buf[..h.record_len() as usize];
        assert!(check_crc(&h, rec));
        (h, decode_body(&h, rec).unwrap())
    }

    #[test]
    fn every_kind_round_trips() {
        let b = Ballot::new(7, ReplicaId(3));
        let recs = [
            Record::Promise { ballot: b },
            Record::Accept { slot: Slot(42), ballot: b, value: b"hello, acceptor" },
            Record::Accept { slot: Slot(0), ballot: b, value: b"" },
            Record::Trim { low: Slot(9) },
            Record::Voting { voting: false },
            Record::Voting { voting: true },
            Record::Commit { batch: 5, records: 3 },
        ];
        for (i, r) in recs.iter().enumerate() {
            let mut buf = Vec::new();
            let n = encode(&mut buf, 10 + i as u64, 9, 0x1_0000_0002, r);
            assert_eq!(n as usize, buf.len());
            assert_eq!(n, r.encoded_len());
            assert_eq!(buf.len() % RECORD_ALIGN, 0);
            let (h, back) = decode(&buf);
            assert_eq!(back, *r);
            assert_eq!((h.lsn, h.durable_lsn, h.kind, h.segment), (10 + i as u64, 9, r.kind(), 2));
        }
        assert_eq!(Record::Commit { batch: 0, records: 0 }.encoded_len(), COMMIT_RECORD_LEN);
    }

    #[test]
    fn golden_promise_bytes() {
        let mut buf = Vec::new();
        encode(&mut buf, 1, 0, 0, &Record::Promise { ballot: Ballot::new(2, ReplicaId(1)) });
        let mut want = vec![0u8; 4];
        want.extend_from_slice(&[8, 0, 0, 0]); // payload length
        want.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]); // lsn
        want.extend_from_slice(&[0; 8]); // durable lsn
        want.extend_from_slice(&[1, 1, 0, 0]); // kind Promise, version 1, reserved
        want.extend_from_slice(&[0; 4]); // segment
        want.extend_from_slice(&[2, 0, 0, 0, 1, 0, 0, 0]); // round 2, leader 1, pad
        let crc = crc32c::crc32c(&want[4..]);
        want[..4].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(buf, want);
    }

    #[test]
    fn any_flipped_bit_is_caught() {
        let mut buf = Vec::new();
        let b = Ballot::new(1, ReplicaId(0));
        encode(&mut buf, 3, 2, 0, &Record::Accept { slot: Slot(5), ballot: b, value: b"abc" });
        for bit in 0..buf.len() * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let ok = parse_header(bad[..RECORD_HEADER_LEN].try_into().unwrap(), 1 << 20)
                .filter(|h| h.record_len() as usize <= bad.len())
                .is_some_and(|h| check_crc(&h, &bad[..h.record_len() as usize]));
            assert!(!ok, "bit {bit} flipped and still valid");
        }
    }

    #[test]
    fn zeros_are_not_a_record() {
        assert_eq!(parse_header(&[0; RECORD_HEADER_LEN], 1 << 20), None);
    }

    #[test]
    fn segment_header_round_trips_and_rejects_damage() {
        let sh = SegmentHeader { log_id: 0xfeed, segment: 3, capacity: 1 << 26 };
        let mut buf = Vec::new();
        sh.encode(&mut buf);
        assert_eq!(buf.len() as u64, SEGMENT_HEADER_LEN);
        assert_eq!(SegmentHeader::parse(&buf), Some(sh));
        buf[20] ^= 1;
        assert_eq!(SegmentHeader::parse(&buf), None);
        assert_eq!(SegmentHeader::parse(&[0; 64]), None);
    }
}
