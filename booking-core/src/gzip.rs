//! gzip answers joined from pieces compressed once.
//!
//! A deflate stream is a run of blocks, and a block may start on any byte boundary: pieces
//! compressed on their own, each ended on a byte boundary and none the last block (a sync
//! flush), can be laid one after another, with plain bytes between them in stored blocks,
//! and closed with an empty last block. The gzip trailer's CRC-32 of the whole is combined
//! from each piece's own. So a search's gzip answer is joined from its films' and shows'
//! pieces, deflated when the listing is read, without compressing anything per search
//! (`crate::listing`): a city's search at the design's scale is ~94 KB as JSON, and what
//! crosses the network (twice, through the gateway) is a fraction of it.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress, Status};
use http::HeaderMap;
use http::header::ACCEPT_ENCODING;

/// How hard pieces are compressed: once each, when the listing is read.
const LEVEL: u32 = 6;

/// A gzip member's header: no name, no time, no flags, "unknown" system.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An empty last block (fixed codes, just its end): what closes the deflate stream.
const LAST_BLOCK: [u8; 2] = [0x03, 0x00];

/// The most a stored block holds.
const STORED_MAX: usize = u16::MAX as usize;

/// Bytes deflated on their own: raw deflate blocks, none the last, ending on a byte boundary;
/// with their CRC-32 and length, for the trailer of the gzip answer they go into. The default
/// is nothing at all.
#[derive(Default)]
pub struct Deflated {
    bytes: Box<[u8]>,
    crc: u32,
    len: u32,
}

/// Deflates pieces one after another, its compressor (a few hundred KB of tables) reused.
pub struct Deflater(Compress);

impl Default for Deflater {
    fn default() -> Self {
        Self(Compress::new(Compression::new(LEVEL), false))
    }
}

impl Deflater {
    pub fn deflate(&mut self, plain: &[u8]) -> Deflated {
        let z = &mut self.0;
        z.reset();
        let mut out = Vec::with_capacity(plain.len() / 3 + 64);
        loop {
            let read = usize::try_from(z.total_in()).expect("a piece fits in memory");
            let status = z
                .compress_vec(&plain[read..], &mut out, FlushCompress::Sync)
                .expect("deflating bytes in memory cannot fail");
            // The flush is done once all is read and the output was not full, or once a call
            // with all read could make no progress (the flush had ended filling it exactly).
            if z.total_in() as usize == plain.len()
                && (out.len() < out.capacity() || status == Status::BufError)
            {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        Deflated {
            bytes: out.into_boxed_slice(),
            crc: crc32fast::hash(plain),
            len: u32::try_from(plain.len()).expect("a piece is under 4 GiB"),
        }
    }
}

impl Deflated {
    /// Its compressed size.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }
}

/// A piece of a gzip answer: plain text, or text deflated once.
#[derive(Clone, Copy)]
pub enum Piece<'a> {
    Plain(&'a str),
    Deflated(&'a Deflated),
}

/// A gzip member written piece by piece: plain bytes in stored blocks, deflated pieces as
/// they are.
pub struct Gzip {
    out: Vec<u8>,
    crc: crc32fast::Hasher,
    /// The length of everything written, before compression.
    len: u64,
    /// Where the stored block being filled starts (its five header bytes written last).
    stored: Option<usize>,
}

impl Gzip {
    /// About `capacity` bytes expected.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + HEADER.len() + 16);
        out.extend_from_slice(&HEADER);
        Self {
            out,
            crc: crc32fast::Hasher::new(),
            len: 0,
            stored: None,
        }
    }

    /// Plain bytes, as they are.
    pub fn plain(&mut self, mut bytes: &[u8]) {
        self.crc.update(bytes);
        self.len += bytes.len() as u64;
        while !bytes.is_empty() {
            let start = *self.stored.get_or_insert_with(|| {
                self.out.extend_from_slice(&[0; 5]);
                self.out.len() - 5
            });
            let room = STORED_MAX - (self.out.len() - start - 5);
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.out.extend_from_slice(now);
            bytes = rest;
            if !bytes.is_empty() {
                self.close_stored();
            }
        }
    }

    pub fn piece(&mut self, piece: Piece<'_>) {
        match piece {
            Piece::Plain(text) => self.plain(text.as_bytes()),
            Piece::Deflated(d) => self.deflated(d),
        }
    }

    /// A deflated piece.
    pub fn deflated(&mut self, piece: &Deflated) {
        self.close_stored();
        self.out.extend_from_slice(&piece.bytes);
        self.len += u64::from(piece.len);
        self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
            piece.crc,
            u64::from(piece.len),
        ));
    }

    /// The stored block being filled gets its header: not the last block, type 0 (a byte on
    /// its own, the block starting on a byte boundary), its length and that length's
    /// complement.
    fn close_stored(&mut self) {
        if let Some(start) = self.stored.take() {
            let len = u16::try_from(self.out.len() - start - 5).expect("a stored block's size");
            self.out[start] = 0;
            self.out[start + 1..start + 3].copy_from_slice(&len.to_le_bytes());
            self.out[start + 3..start + 5].copy_from_slice(&(!len).to_le_bytes());
        }
    }

    /// The member, closed: the last block, then the CRC-32 and the length (modulo 2³²) of
    /// everything written.
    pub fn finish(mut self) -> Bytes {
        self.close_stored();
        self.out.extend_from_slice(&LAST_BLOCK);
        self.out
            .extend_from_slice(&self.crc.finalize().to_le_bytes());
        // ISIZE: the length modulo 2³², as the format has it.
        self.out.extend_from_slice(&(self.len as u32).to_le_bytes());
        Bytes::from(self.out)
    }
}

/// Whether the client takes gzip answers (`Accept-Encoding`, RFC 9110 §12.5.3): `gzip` (or
/// `x-gzip`) named with a weight above 0, or else `*` with one; a weight of 0 refuses it.
pub fn accepted(headers: &HeaderMap) -> bool {
    let mut any = false;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let weighted = parts.all(|p| {
                let (name, weight) = p.split_once('=').unwrap_or((p, ""));
                !name.trim().eq_ignore_ascii_case("q")
                    || weight.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
            });
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                return weighted;
            }
            any |= coding == "*" && weighted;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("a valid gzip member, its CRC and length checked");
        out
    }

    /// Text that repeats (as shows' JSON does) and text that does not, in pieces of every size.
    fn piece(i: usize) -> Vec<u8> {
        let mut p = format!("{{\"id\":\"s_{i}\",\"theater\":\"Odeon {}\",", i % 7).into_bytes();
        p.extend((0..i * 37 % 5_000).map(|j| (j * 31 + i) as u8));
        p
    }

    #[test]
    fn plain_and_deflated_pieces_in_any_order_unzip_to_what_was_written() {
        for pattern in 0..16u32 {
            let mut gz = Gzip::with_capacity(0);
            let mut expected = Vec::new();
            for i in 0..12 {
                let p = piece(i * 13 + pattern as usize);
                if pattern >> (i % 4) & 1 == 1 {
                    gz.deflated(&Deflater::default().deflate(&p));
                } else {
                    gz.plain(&p);
                }
                expected.extend_from_slice(&p);
            }
            assert_eq!(gunzip(&gz.finish()), expected, "pattern {pattern:04b}");
        }
    }

    /// Every size, so some flush ends exactly where the room made for it does.
    #[test]
    fn a_piece_of_any_size_unzips() {
        let mut deflater = Deflater::default();
        let text: Vec<u8> = (0..3_000u32).map(|i| (i * i % 97) as u8).collect();
        for len in 0..text.len() {
            let mut gz = Gzip::with_capacity(0);
            gz.deflated(&deflater.deflate(&text[..len]));
            assert_eq!(gunzip(&gz.finish()), &text[..len], "{len} bytes");
        }
    }

    #[test]
    fn plain_bytes_longer_than_a_stored_block_and_nothing_at_all_unzip() {
        let long: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut gz = Gzip::with_capacity(0);
        gz.plain(&long[..1]);
        gz.plain(&long[1..]);
        gz.deflated(&Deflater::default().deflate(b""));
        assert_eq!(gunzip(&gz.finish()), long);
        assert_eq!(gunzip(&Gzip::with_capacity(0).finish()), b"");
    }

    #[test]
    fn gzip_is_taken_when_named_or_starred_with_a_weight_above_zero() {
        let takes = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(ACCEPT_ENCODING, v.parse().unwrap());
            }
            accepted(&h)
        };
        assert!(takes(&["gzip, deflate, br, zstd"]), "a browser");
        assert!(takes(&["br;q=1.0, GZIP;q=0.5"]));
        assert!(takes(&["x-gzip"]));
        assert!(takes(&["br", "gzip"]), "over two lines");
        assert!(takes(&["*"]));
        assert!(takes(&["identity;q=1, *;q=0.1"]));
        assert!(!takes(&[]), "no header: identity");
        assert!(!takes(&["identity"]));
        assert!(!takes(&["br, deflate"]));
        assert!(!takes(&["gzip;q=0"]));
        assert!(
            !takes(&["gzip; q=0.000, *"]),
            "refused by name, whatever * says"
        );
        assert!(!takes(&["*;q=0"]));
        assert!(!takes(&["gzip;q=x"]), "a weight that is not one");
        assert!(!takes(&["gzipped"]));
    }

    #[test]
    fn repeating_text_deflates_to_a_fraction() {
        let text = (0..6)
            .map(|i| {
                format!(
                    r#"{{"id":"s_{i}","theater":"Odeon","starts_at":"2030-06-01T1{i}:00:00Z"}}"#
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        let d = Deflater::default().deflate(text.as_bytes());
        assert!(d.size() * 3 < text.len(), "{} of {}", d.size(), text.len());
    }
}
