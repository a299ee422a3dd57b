//! Wire encoding of protocol messages (being written; see docs/wire-format.md).
