//! Joining independently compressed raw deflate pieces into one stream. A compressor
//! that cannot stop without a final block (libdeflate) marks its last block final;
//! walking the piece's blocks finds that block's header and its end, so the final bit
//! can be cleared and an empty stored block can realign the stream to a byte, as a
//! zlib sync flush does.

use std::io;

/// Bits looked up at once when decoding; longer codes are decoded bit by bit.
const FAST_BITS: u32 = 11;
const FAST_SIZE: usize = 1 << FAST_BITS;
/// Extra bits of the length symbols 257..=285.
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Extra bits of the distance symbols 0..=29.
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// The order in which a dynamic block lists its code length code lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("compressed block: {what}"),
    )
}

/// Make a raw deflate piece, which ends with a final block, joinable: clear the final
/// bit and append an empty stored block, so that the next piece's first block follows
/// on a byte boundary.
pub(super) fn make_joinable(piece: &mut Vec<u8>) -> io::Result<()> {
    let (header, end) = final_block(piece)?;
    if piece.len() as u64 != end.div_ceil(8) {
        return Err(invalid("bytes after the final block"));
    }
    piece[(header / 8) as usize] &= !(1u8 << (header % 8));
    let used = (end % 8) as u32;
    if used != 0 {
        // The bits after the end are padding, and become the stored block's header.
        let last = piece.len() - 1;
        piece[last] &= (1u8 << used) - 1;
    }
    let padding = (8 - used) % 8;
    if padding < 3 {
        // The stored block's 3 header bits (all zero) do not fit in this byte.
        piece.push(0);
    }
    piece.extend_from_slice(&[0, 0, 0xff, 0xff]);
    Ok(())
}

/// Where the final block of `data` starts (the bit of its header) and ends (the bit
/// after its end-of-block code), counting bits from the start of `data`.
pub(super) fn final_block(data: &[u8]) -> io::Result<(u64, u64)> {
    let mut bits = Bits::new(data);
    let mut fixed: Option<(Huffman, Huffman)> = None;
    loop {
        let header = bits.position();
        let last = bits.take(1)? == 1;
        match bits.take(2)? {
            0 => {
                bits.align();
                let length = bits.take(16)?;
                if bits.take(16)? != !length & 0xffff {
                    return Err(invalid("stored block length mismatch"));
                }
                bits.skip_bytes(length as usize)?;
            }
            1 => {
                let (literals, distances) = fixed.get_or_insert_with(fixed_codes);
                skip_symbols(&mut bits, literals, distances)?;
            }
            2 => {
                let (literals, distances) = dynamic_codes(&mut bits)?;
                skip_symbols(&mut bits, &literals, &distances)?;
            }
            _ => return Err(invalid("reserved block type")),
        }
        let end = bits.position();
        if end > data.len() as u64 * 8 {
            return Err(invalid("truncated"));
        }
        if last {
            return Ok((header, end));
        }
    }
}

/// A little-endian bit reader over a byte slice, 56 to 63 bits buffered at a time.
/// Past the end it reads zeros, a few bytes' worth at most: callers compare
/// [`Bits::position`] with the length.
struct Bits<'a> {
    data: &'a [u8],
    /// The next byte to load.
    next: usize,
    buffer: u64,
    /// Valid bits in `buffer`.
    count: u32,
    /// Zero bytes loaded past the end.
    padded: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            next: 0,
            buffer: 0,
            count: 0,
            padded: 0,
        }
    }

    /// Bits consumed so far.
    fn position(&self) -> u64 {
        (self.next as u64 + u64::from(self.padded)) * 8 - u64::from(self.count)
    }

    /// Buffer at least 56 bits.
    #[inline]
    fn refill(&mut self) -> io::Result<()> {
        if let Some(word) = self.data.get(self.next..self.next + 8) {
            let word = u64::from_le_bytes(word.try_into().expect("8 bytes"));
            self.buffer |= word << self.count;
            self.next += ((63 - self.count) / 8) as usize;
            self.count |= 56;
            return Ok(());
        }
        while self.count < 56 {
            let byte = match self.data.get(self.next) {
                Some(&byte) => {
                    self.next += 1;
                    byte
                }
                None if self.padded < 8 => {
                    self.padded += 1;
                    0
                }
                None => return Err(invalid("truncated")),
            };
            self.buffer |= u64::from(byte) << self.count;
            self.count += 8;
        }
        Ok(())
    }

    #[inline]
    fn peek(&self, n: u32) -> usize {
        (self.buffer & ((1u64 << n) - 1)) as usize
    }

    /// The index into a fast table.
    #[inline]
    fn peek_fast(&self) -> usize {
        self.buffer as usize & (FAST_SIZE - 1)
    }

    /// Drop `n` buffered bits (`n` at most what [`Bits::refill`] guarantees).
    #[inline]
    fn consume(&mut self, n: u32) {
        self.buffer >>= n;
        self.count -= n;
    }

    fn take(&mut self, n: u32) -> io::Result<u32> {
        self.refill()?;
        let value = self.peek(n) as u32;
        self.consume(n);
        Ok(value)
    }

    /// Skip to the next byte boundary.
    fn align(&mut self) {
        self.consume(self.count % 8);
    }

    /// Skip `n` whole bytes (after [`Bits::align`]).
    fn skip_bytes(&mut self, n: usize) -> io::Result<()> {
        let buffered = (self.count / 8) as usize;
        if n <= buffered {
            self.consume(n as u32 * 8);
            return Ok(());
        }
        self.next += n - buffered;
        self.buffer = 0;
        self.count = 0;
        if self.next > self.data.len() {
            return Err(invalid("truncated"));
        }
        Ok(())
    }
}

/// What a fast table entry decodes to (bits 5-6 of the entry; bits 0-4 are the bits
/// to consume: the code and, for lengths and distances, its extra bits).
const SLOW: u16 = 0;
const LITERAL: u16 = 1 << 5;
const LENGTH: u16 = 2 << 5;
const END: u16 = 3 << 5;

/// A canonical Huffman code: a table of the codes up to [`FAST_BITS`] long, and the
/// counts and sorted symbols for decoding longer ones bit by bit.
struct Huffman {
    fast: Box<[u16; FAST_SIZE]>,
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    /// The code with these lengths; `entry` gives a symbol's fast entry from its code
    /// length.
    fn new(lengths: &[u8], entry: impl Fn(u16, u16) -> u16) -> io::Result<Huffman> {
        let mut counts = [0u16; 16];
        for &length in lengths {
            counts[usize::from(length)] += 1;
        }
        counts[0] = 0;
        let mut left = 1i32;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err(invalid("over-subscribed code"));
            }
        }
        let mut offsets = [0u16; 16];
        for length in 1..15 {
            offsets[length + 1] = offsets[length] + counts[length];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &length) in lengths.iter().enumerate() {
            if length != 0 {
                let slot = &mut offsets[usize::from(length)];
                symbols[usize::from(*slot)] = symbol as u16;
                *slot += 1;
            }
        }
        let mut fast = Box::new([SLOW; FAST_SIZE]);
        let (mut code, mut index) = (0u32, 0usize);
        for length in 1..=FAST_BITS {
            for _ in 0..counts[length as usize] {
                let reversed = code.reverse_bits() >> (32 - length);
                let value = entry(symbols[index], length as u16);
                let mut slot = reversed as usize;
                while slot < fast.len() {
                    fast[slot] = value;
                    slot += 1 << length;
                }
                code += 1;
                index += 1;
            }
            code <<= 1;
        }
        Ok(Huffman {
            fast,
            counts,
            symbols,
        })
    }

    /// Decode one symbol bit by bit (codes are stored most significant bit first).
    /// Needs 15 bits buffered.
    fn decode_slow(&self, bits: &mut Bits) -> io::Result<u16> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for length in 1..16u32 {
            code |= ((bits.buffer >> (length - 1)) & 1) as i32;
            let count = i32::from(self.counts[length as usize]);
            if code - first < count {
                bits.consume(length);
                return Ok(self.symbols[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(invalid("invalid code"))
    }
}

/// The fast entry of literal/length `symbol` with a code of `length` bits.
fn literal_entry(symbol: u16, length: u16) -> u16 {
    match symbol {
        0..=255 => LITERAL | length,
        256 => END | length,
        257..=285 => LENGTH | (length + u16::from(LENGTH_EXTRA[usize::from(symbol - 257)])),
        _ => SLOW,
    }
}

/// The fast entry of distance `symbol` with a code of `length` bits.
fn distance_entry(symbol: u16, length: u16) -> u16 {
    match DISTANCE_EXTRA.get(usize::from(symbol)) {
        Some(&extra) => LITERAL | (length + u16::from(extra)),
        None => SLOW,
    }
}

fn fixed_codes() -> (Huffman, Huffman) {
    let mut lengths = [0u8; 288];
    lengths[..144].fill(8);
    lengths[144..256].fill(9);
    lengths[256..280].fill(7);
    lengths[280..].fill(8);
    let literals = Huffman::new(&lengths, literal_entry).expect("the fixed code is complete");
    let distances = Huffman::new(&[5; 30], distance_entry).expect("the fixed code is valid");
    (literals, distances)
}

fn dynamic_codes(bits: &mut Bits) -> io::Result<(Huffman, Huffman)> {
    let literal_count = bits.take(5)? as usize + 257;
    let distance_count = bits.take(5)? as usize + 1;
    let code_length_count = bits.take(4)? as usize + 4;
    if literal_count > 286 || distance_count > 30 {
        return Err(invalid("too many codes"));
    }
    let mut code_lengths = [0u8; 19];
    for &symbol in &CODE_LENGTH_ORDER[..code_length_count] {
        code_lengths[symbol] = bits.take(3)? as u8;
    }
    let code_length_code = Huffman::new(&code_lengths, |_, _| SLOW)?;
    let total = literal_count + distance_count;
    let mut lengths = vec![0u8; total];
    let mut filled = 0;
    while filled < total {
        bits.refill()?;
        let symbol = code_length_code.decode_slow(bits)?;
        let (value, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *lengths[..filled]
                    .last()
                    .ok_or_else(|| invalid("repeat with no previous length"))?;
                (previous, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            18 => (0, 11 + bits.take(7)? as usize),
            _ => return Err(invalid("invalid code length symbol")),
        };
        if filled + repeat > total {
            return Err(invalid("code lengths overflow"));
        }
        lengths[filled..filled + repeat].fill(value);
        filled += repeat;
    }
    if lengths[256] == 0 {
        return Err(invalid("no end-of-block code"));
    }
    Ok((
        Huffman::new(&lengths[..literal_count], literal_entry)?,
        Huffman::new(&lengths[literal_count..], distance_entry)?,
    ))
}

/// Read a block's symbols up to and including its end-of-block code. This is where a
/// walk spends its time, so the common case (codes found in the fast tables) has no
/// branch that depends on the data: a distance is looked up after every symbol and
/// its bits are consumed only after a length. Each round consumes at most 40 bits (a
/// length and a distance with their extra bits), and starts with at least 56.
fn skip_symbols(bits: &mut Bits, literals: &Huffman, distances: &Huffman) -> io::Result<()> {
    let mut local = Bits { ..*bits };
    let result = loop {
        if let Err(e) = local.refill() {
            break Err(e);
        }
        let entry = literals.fast[local.peek_fast()];
        let kind = entry & (3 << 5);
        local.consume(u32::from(entry & 31));
        let distance = distances.fast[local.peek_fast()];
        let is_length = kind == LENGTH;
        let rare = (kind == END) | (kind == SLOW) | (is_length & (distance == SLOW));
        if !rare {
            local.consume(u32::from(distance & 31) * u32::from(is_length));
            continue;
        }
        if kind == END {
            break Ok(());
        }
        let step = if kind == LENGTH {
            slow_distance(&mut local, distances).map(|()| false)
        } else {
            slow_symbol(&mut local, literals, distances)
        };
        match step {
            Ok(true) => break Ok(()),
            Ok(false) => continue,
            Err(e) => break Err(e),
        }
    };
    *bits = local;
    result
}

/// A literal/length code longer than the fast table's, and its distance if it is a
/// length; true at the end of the block.
#[cold]
#[inline(never)]
fn slow_symbol(bits: &mut Bits, literals: &Huffman, distances: &Huffman) -> io::Result<bool> {
    bits.refill()?;
    match literals.decode_slow(bits)? {
        0..=255 => Ok(false),
        256 => Ok(true),
        symbol @ 257..=285 => {
            bits.consume(u32::from(LENGTH_EXTRA[usize::from(symbol - 257)]));
            slow_distance(bits, distances)?;
            Ok(false)
        }
        _ => Err(invalid("invalid length symbol")),
    }
}

/// A distance, by the fast table or bit by bit, with its extra bits.
#[cold]
#[inline(never)]
fn slow_distance(bits: &mut Bits, distances: &Huffman) -> io::Result<()> {
    bits.refill()?;
    let entry = distances.fast[bits.peek_fast()];
    if entry != SLOW {
        bits.consume(u32::from(entry & 31));
        return Ok(());
    }
    let symbol = distances.decode_slow(bits)?;
    let extra = DISTANCE_EXTRA
        .get(usize::from(symbol))
        .ok_or_else(|| invalid("invalid distance symbol"))?;
    bits.consume(u32::from(*extra));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn samples() -> Vec<Vec<u8>> {
        let mut noise = crate::compress::tests::Noise(0x9e37_79b9_7f4a_7c15);
        let mut random = || noise.byte();
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("line {} of a layer {}\n", i % 977, i % 13).into_bytes())
            .collect();
        vec![
            Vec::new(),
            b"a".to_vec(),
            vec![0; 100_000],
            (0..200_000).map(|_| random()).collect(),
            text,
            (0..70_000)
                .map(|i| if i % 3 == 0 { random() } else { b'x' })
                .collect(),
        ]
    }

    fn deflate(data: &[u8], level: i32) -> Vec<u8> {
        let mut compressor =
            libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        let mut out = vec![0; compressor.deflate_compress_bound(data.len())];
        let n = compressor.deflate_compress(data, &mut out).unwrap();
        out.truncate(n);
        out
    }

    /// Pieces of every kind of block (stored, fixed, dynamic) at every level join into
    /// one stream that inflates to the pieces' input.
    #[test]
    fn joined_pieces_inflate_to_their_input() {
        let samples = samples();
        for level in [0, 1, 6, 12] {
            let mut stream = Vec::new();
            let mut input = Vec::new();
            for (i, sample) in samples.iter().enumerate() {
                let mut piece = deflate(sample, level);
                let (header, end) = final_block(&piece).unwrap();
                assert!(header < end && end <= piece.len() as u64 * 8);
                if i + 1 < samples.len() {
                    make_joinable(&mut piece).unwrap();
                }
                stream.extend_from_slice(&piece);
                input.extend_from_slice(sample);
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&stream[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, input, "level {level}");
        }
    }

    #[test]
    fn broken_pieces_are_errors_not_panics() {
        let piece = deflate(&samples()[4], 6);
        for cut in [0, 1, piece.len() / 2, piece.len() - 1] {
            assert!(final_block(&piece[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = piece.clone();
        extra.push(0);
        assert!(make_joinable(&mut extra).is_err());
        assert!(final_block(&[0xff; 64]).is_err());
    }
}
