//! Client commands as the simulator encodes them: `client: u32 LE, seq: u32 LE, pid: u64 LE`
//! (16 bytes) then `pad` filler bytes derived from the pid. `(client, seq)` names a request;
//! `pid` (proposal id) names one attempt to get it into the log and is unique across the run,
//! so the checkers can tell every attempt apart and recompute its exact bytes.

/// Bytes before the padding.
pub const COMMAND_HEADER_BYTES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CommandId {
    pub client: u32,
    pub seq: u32,
    pub pid: u64,
}

/// Appends the encoding of `id` with `pad` filler bytes to `out`.
pub fn encode(id: CommandId, pad: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.client.to_le_bytes());
    out.extend_from_slice(&id.seq.to_le_bytes());
    out.extend_from_slice(&id.pid.to_le_bytes());
    out.extend((0..pad).map(|i| (id.pid as u8).wrapping_mul(31).wrapping_add(i as u8)));
}

/// The header of a command, if it has one. The padding is checked by re-encoding.
pub fn decode(bytes: &[u8]) -> Option<(CommandId, usize)> {
    if bytes.len() < COMMAND_HEADER_BYTES {
        return None;
    }
    let u32_at =
        |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let mut pid = [0u8; 8];
    pid.copy_from_slice(&bytes[8..16]);
    let id = CommandId { client: u32_at(0), seq: u32_at(4), pid: u64::from_le_bytes(pid) };
    Some((id, bytes.len() - COMMAND_HEADER_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = CommandId { client: 3, seq: 9, pid: 12345 };
        let mut v = Vec::new();
        encode(id, 7, &mut v);
        assert_eq!(v.len(), COMMAND_HEADER_BYTES + 7);
        assert_eq!(decode(&v), Some((id, 7)));
        assert_eq!(decode(&v[..10]), None);
    }
}
