//! `peerhost/1`: the protocol peers speak over a WebRTC data channel.
//!
//! # Participants and goals
//! Two peers of one site (browsers or native seeders) that the tracker
//! introduced. They tell each other which pieces of the current manifest
//! they hold, request pieces, and pass on newer signed manifests. Nothing
//! here is trusted: every piece is checked against the signed manifest
//! before use ([`crate::piece::PieceMap::verify`]), every manifest against
//! the site key.
//!
//! Non-goals: congestion control and reliability (the SCTP data channel,
//! ordered and reliable, provides both), encryption (DTLS does), discovery
//! (the tracker does).
//!
//! # Framing
//! One data-channel message carries exactly one frame. A frame is a one-byte
//! type followed by that type's fields; integers are big-endian. No frame is
//! longer than [`MAX_FRAME_LEN`]. A receiver decodes a frame only after
//! checking that bound, so no length read from the wire ever sizes an
//! allocation beyond it. Trailing bytes after the last field are an error.
//!
//! | type | name | fields |
//! |---|---|---|
//! | `0x00` | [`Frame::Handshake`] | protocol id (`peerhost/1`, 10 bytes), site key (32), manifest version (u64), piece count (u32), have-bitfield (`ceil(count/8)` bytes, spare bits zero) |
//! | `0x01` | [`Frame::Have`] | piece (u32) |
//! | `0x02` | [`Frame::Request`] | piece (u32) |
//! | `0x03` | [`Frame::Piece`] | piece (u32), data (the rest, 1..=[`MAX_PIECE_DATA`] bytes) |
//! | `0x04` | [`Frame::Cancel`] | piece (u32) |
//! | `0x05` | [`Frame::Reject`] | piece (u32) |
//! | `0x06` | [`Frame::ManifestOffer`] | version (u64), total length (u32, ≤ [`MAX_MANIFEST_LEN`]), offset (u32), chunk (the rest, ≤ [`MAX_MANIFEST_CHUNK`]) |
//! | `0x07`–`0x7f` | reserved for later versions of this protocol | decoders answer [`FrameError::UnknownType`] |
//! | `0x80`–`0xff` | reserved for extensions | decoders answer [`FrameError::UnknownType`] |
//!
//! # Conversation
//! 1. When the channel opens, each side sends one `Handshake` first. A peer
//!    whose protocol id or site key differs is closed. Piece indices are
//!    global indices of the sender's manifest version ([`crate::piece`]);
//!    pieces are exchanged only between peers on the same version.
//! 2. A peer on a newer version than the other sends its signed manifest
//!    as `ManifestOffer` chunks in order (offset 0 first). The receiver
//!    verifies the whole against the site key and its version guard; a
//!    valid newer one becomes current and the receiver sends a fresh
//!    `Handshake` for it. An older or invalid one is dropped (and an invalid
//!    one counts against the sender).
//! 3. `Have` announces a newly verified piece. `Request` asks for one
//!    piece; the answer is `Piece` with the whole piece, or `Reject`.
//!    `Reject` is the one answer to any request that will not be served —
//!    not held, over the upload budget, leech-only, shutting down — so a
//!    peer cannot probe what a visitor holds or why. `Cancel` withdraws a
//!    request; a `Piece` may still arrive and is then ignored.
//! 4. A `Piece` the receiver did not request, or whose bytes fail the
//!    manifest hash, is a protocol violation: the sender is dropped and
//!    reported.
//!
//! # In memory
//! Drivers that carry frames without serialising them (the simulator, the
//! in-memory test harness) pass [`Frame`] values, checked with
//! [`Frame::check`] against the same limits as the decoder. A piece's data
//! is a shared [`Bytes`] buffer: [`Frame::decode_shared`] slices it out of
//! the received message without copying, and a client serving a piece
//! hands out its stored buffer, not a copy.
//!
//! # Limits
//! Every limit is a named constant below; [`MAX_REQUESTS_IN_FLIGHT`] is how
//! many requests a peer may have outstanding to another before further ones
//! are rejected.

use bytes::Bytes;

use crate::codec::{ReadError, Reader};
use crate::manifest::{MAX_MANIFEST_LEN as MANIFEST_CAP, MAX_PIECE_SIZE, MAX_TOTAL_PIECES};
use crate::piece::{PieceIndex, spare_bits_set};

/// Protocol identifier sent in the handshake.
pub const PROTOCOL_ID: &[u8; 10] = b"peerhost/1";
/// Label of the data channel that carries this protocol.
pub const CHANNEL_LABEL: &str = "peerhost/1";
/// Largest piece payload: one piece.
pub const MAX_PIECE_DATA: usize = MAX_PIECE_SIZE as usize;
/// Header bytes every frame may add to its payload.
pub const MAX_HEADER_LEN: usize = 64;
/// Largest frame: a 16 KiB payload plus header. The handshake's bitfield
/// (16 KiB for [`MAX_TOTAL_PIECES`]) fits too.
pub const MAX_FRAME_LEN: usize = MAX_PIECE_DATA + MAX_HEADER_LEN;
/// Largest signed manifest passed on between peers.
pub const MAX_MANIFEST_LEN: usize = MANIFEST_CAP;
/// Largest manifest chunk in one `ManifestOffer` frame.
pub const MAX_MANIFEST_CHUNK: usize = MAX_PIECE_DATA;
/// Most requests one peer may have outstanding with another.
pub const MAX_REQUESTS_IN_FLIGHT: usize = 64;

const T_HANDSHAKE: u8 = 0x00;
const T_HAVE: u8 = 0x01;
const T_REQUEST: u8 = 0x02;
const T_PIECE: u8 = 0x03;
const T_CANCEL: u8 = 0x04;
const T_REJECT: u8 = 0x05;
const T_MANIFEST_OFFER: u8 = 0x06;

/// One `peerhost/1` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// First frame on a channel, and again after switching manifest version.
    Handshake {
        /// The site both peers serve.
        site_key: [u8; 32],
        /// The sender's current manifest version.
        version: u64,
        /// Pieces in that version (bits of `have`).
        piece_count: u32,
        /// Bitfield of verified pieces the sender holds, `ceil(piece_count/8)` bytes.
        have: Vec<u8>,
    },
    /// The sender now holds this verified piece.
    Have {
        /// Global piece index.
        piece: PieceIndex,
    },
    /// Please send this piece.
    Request {
        /// Global piece index.
        piece: PieceIndex,
    },
    /// A whole piece.
    Piece {
        /// Global piece index.
        piece: PieceIndex,
        /// Its bytes (shared, not copied, between the store and frames).
        data: Bytes,
    },
    /// Withdraws a request.
    Cancel {
        /// Global piece index.
        piece: PieceIndex,
    },
    /// The request will not be served (for whatever reason).
    Reject {
        /// Global piece index.
        piece: PieceIndex,
    },
    /// A chunk of a newer signed manifest.
    ManifestOffer {
        /// The offered manifest's version.
        version: u64,
        /// Length of the whole signed manifest.
        total_len: u32,
        /// Offset of this chunk.
        offset: u32,
        /// The chunk.
        chunk: Vec<u8>,
    },
}

/// Why bytes are not a valid frame. Any such error closes the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Zero bytes.
    #[error("empty frame")]
    Empty,
    /// Longer than [`MAX_FRAME_LEN`].
    #[error("frame of {0} bytes exceeds {MAX_FRAME_LEN}")]
    TooLong(usize),
    /// A type byte this version does not know.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// Handshake with another protocol id.
    #[error("not a peerhost/1 handshake")]
    WrongProtocol,
    /// Handshake whose bitfield does not fit its piece count.
    #[error("handshake bitfield does not match {0} pieces")]
    BadBitfield(u32),
    /// Piece count above [`MAX_TOTAL_PIECES`].
    #[error("{0} pieces exceed the limit")]
    TooManyPieces(u32),
    /// Piece frame with no data or more than [`MAX_PIECE_DATA`].
    #[error("piece payload of {0} bytes")]
    BadPieceLen(usize),
    /// Manifest chunk outside its declared total, or total above the cap.
    #[error("manifest chunk {offset}+{len} outside total {total_len}")]
    BadManifestChunk {
        /// Declared total.
        total_len: u32,
        /// Chunk offset.
        offset: u32,
        /// Chunk length.
        len: usize,
    },
    /// Too short, or bytes left over.
    #[error(transparent)]
    Read(#[from] ReadError),
}

impl Frame {
    /// Encodes the frame. Panics only on a frame no decoder would accept,
    /// i.e. a bug in the caller (an oversized piece or bitfield).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        match self {
            Frame::Handshake {
                site_key,
                version,
                piece_count,
                have,
            } => {
                assert_eq!(
                    have.len(),
                    piece_count.div_ceil(8) as usize,
                    "bitfield length"
                );
                out.push(T_HANDSHAKE);
                out.extend_from_slice(PROTOCOL_ID);
                out.extend_from_slice(site_key);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&piece_count.to_be_bytes());
                out.extend_from_slice(have);
            }
            Frame::Have { piece } => put_index(&mut out, T_HAVE, *piece),
            Frame::Request { piece } => put_index(&mut out, T_REQUEST, *piece),
            Frame::Cancel { piece } => put_index(&mut out, T_CANCEL, *piece),
            Frame::Reject { piece } => put_index(&mut out, T_REJECT, *piece),
            Frame::Piece { piece, data } => {
                assert!(
                    !data.is_empty() && data.len() <= MAX_PIECE_DATA,
                    "piece length"
                );
                put_index(&mut out, T_PIECE, *piece);
                out.extend_from_slice(data);
            }
            Frame::ManifestOffer {
                version,
                total_len,
                offset,
                chunk,
            } => {
                assert!(chunk.len() <= MAX_MANIFEST_CHUNK, "manifest chunk length");
                out.push(T_MANIFEST_OFFER);
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&total_len.to_be_bytes());
                out.extend_from_slice(&offset.to_be_bytes());
                out.extend_from_slice(chunk);
            }
        }
        debug_assert!(out.len() <= MAX_FRAME_LEN);
        out
    }

    fn encoded_len(&self) -> usize {
        match self {
            Frame::Handshake { have, .. } => 1 + 10 + 32 + 8 + 4 + have.len(),
            Frame::Piece { data, .. } => 5 + data.len(),
            Frame::ManifestOffer { chunk, .. } => 17 + chunk.len(),
            _ => 5,
        }
    }

    /// Decodes one frame. Total: any input gives a frame or an error, and
    /// nothing larger than the input is allocated. A piece's data is copied
    /// out of `bytes`; see [`Frame::decode_shared`] to avoid that.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        Frame::decode_inner(bytes, None)
    }

    /// Decodes one frame whose piece data, if any, stays a slice of `bytes`
    /// (no copy).
    pub fn decode_shared(bytes: &Bytes) -> Result<Frame, FrameError> {
        Frame::decode_inner(bytes, Some(bytes))
    }

    /// Checks a frame passed in memory against every limit the decoder
    /// enforces, so that a frame value is exactly as trustworthy as one
    /// decoded from bytes.
    pub fn check(&self) -> Result<(), FrameError> {
        match self {
            Frame::Handshake {
                piece_count, have, ..
            } => {
                if *piece_count > MAX_TOTAL_PIECES {
                    return Err(FrameError::TooManyPieces(*piece_count));
                }
                if have.len() != piece_count.div_ceil(8) as usize
                    || spare_bits_set(*piece_count, have)
                {
                    return Err(FrameError::BadBitfield(*piece_count));
                }
            }
            Frame::Piece { data, .. } => {
                if data.is_empty() || data.len() > MAX_PIECE_DATA {
                    return Err(FrameError::BadPieceLen(data.len()));
                }
            }
            Frame::ManifestOffer {
                total_len,
                offset,
                chunk,
                ..
            } => check_manifest_chunk(*total_len, *offset, chunk.len())?,
            Frame::Have { .. }
            | Frame::Request { .. }
            | Frame::Cancel { .. }
            | Frame::Reject { .. } => {}
        }
        Ok(())
    }

    fn decode_inner(bytes: &[u8], shared: Option<&Bytes>) -> Result<Frame, FrameError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLong(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let ty = r.u8().map_err(|_| FrameError::Empty)?;
        let frame = match ty {
            T_HANDSHAKE => {
                if r.take(PROTOCOL_ID.len())? != PROTOCOL_ID {
                    return Err(FrameError::WrongProtocol);
                }
                let site_key = r.array()?;
                let version = r.u64()?;
                let piece_count = r.u32()?;
                if piece_count > MAX_TOTAL_PIECES {
                    return Err(FrameError::TooManyPieces(piece_count));
                }
                let have = r.rest();
                if have.len() != piece_count.div_ceil(8) as usize
                    || spare_bits_set(piece_count, have)
                {
                    return Err(FrameError::BadBitfield(piece_count));
                }
                Frame::Handshake {
                    site_key,
                    version,
                    piece_count,
                    have: have.to_vec(),
                }
            }
            T_HAVE => Frame::Have { piece: r.u32()? },
            T_REQUEST => Frame::Request { piece: r.u32()? },
            T_CANCEL => Frame::Cancel { piece: r.u32()? },
            T_REJECT => Frame::Reject { piece: r.u32()? },
            T_PIECE => {
                let piece = r.u32()?;
                let data = r.rest();
                if data.is_empty() || data.len() > MAX_PIECE_DATA {
                    return Err(FrameError::BadPieceLen(data.len()));
                }
                let data = match shared {
                    Some(b) => b.slice(b.len() - data.len()..),
                    None => Bytes::copy_from_slice(data),
                };
                Frame::Piece { piece, data }
            }
            T_MANIFEST_OFFER => {
                let version = r.u64()?;
                let total_len = r.u32()?;
                let offset = r.u32()?;
                let chunk = r.rest();
                check_manifest_chunk(total_len, offset, chunk.len())?;
                Frame::ManifestOffer {
                    version,
                    total_len,
                    offset,
                    chunk: chunk.to_vec(),
                }
            }
            other => return Err(FrameError::UnknownType(other)),
        };
        r.expect_empty()?;
        Ok(frame)
    }
}

fn check_manifest_chunk(total_len: u32, offset: u32, len: usize) -> Result<(), FrameError> {
    let end = u64::from(offset) + len as u64;
    if total_len as usize > MAX_MANIFEST_LEN
        || end > u64::from(total_len)
        || len > MAX_MANIFEST_CHUNK
        || (len == 0 && total_len > 0)
    {
        return Err(FrameError::BadManifestChunk {
            total_len,
            offset,
            len,
        });
    }
    Ok(())
}

fn put_index(out: &mut Vec<u8>, ty: u8, piece: PieceIndex) {
    out.push(ty);
    out.extend_from_slice(&piece.to_be_bytes());
}

/// Splits a signed manifest into `ManifestOffer` frames.
pub fn manifest_offer_frames(version: u64, signed: &[u8]) -> Vec<Frame> {
    let total_len = signed.len() as u32;
    signed
        .chunks(MAX_MANIFEST_CHUNK)
        .enumerate()
        .map(|(i, c)| Frame::ManifestOffer {
            version,
            total_len,
            offset: (i * MAX_MANIFEST_CHUNK) as u32,
            chunk: c.to_vec(),
        })
        .collect()
}
