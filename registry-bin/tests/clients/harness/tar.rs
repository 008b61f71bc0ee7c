//! A minimal, deterministic ustar writer: enough for image layers (files
//! the tests write, with their parent folders) and for the OCI-layout
//! archives that `ctr images import` reads.
//!
//! Hand-written rather than a dependency because the suite needs byte-stable
//! output: a layer's digest (and so every digest above it) must not change
//! with a library's defaults for mtimes, owners or padding.

use std::collections::BTreeSet;

const BLOCK: usize = 512;

/// One ustar header. Grammar (POSIX.1-1988 ustar): name[100] mode[8] uid[8]
/// gid[8] size[12] mtime[12] chksum[8] typeflag[1] linkname[100]
/// magic[6]="ustar\0" version[2]="00" uname[32] gname[32] devmajor[8]
/// devminor[8] prefix[155], padded to 512 bytes.
fn header(name: &str, size: usize, dir: bool) -> [u8; BLOCK] {
    assert!(name.len() <= 100, "tar name too long for ustar: {name}");
    let mut h = [0u8; BLOCK];
    let octal = |h: &mut [u8; BLOCK], at: usize, width: usize, value: usize| {
        let text = format!("{value:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(text.as_bytes());
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h, 100, 8, if dir { 0o755 } else { 0o644 });
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, size);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[156] = if dir { b'5' } else { b'0' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // The checksum is computed with its own field read as eight spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: usize = h.iter().map(|&b| b as usize).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    h
}

/// A tar archive of `files` (path, bytes), each parent folder listed once
/// before its first file, in the order given.
pub fn archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dirs = BTreeSet::new();
    for (path, data) in files {
        let mut parent = String::new();
        for part in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            parent.push_str(part);
            parent.push('/');
            if dirs.insert(parent.clone()) {
                out.extend_from_slice(&header(&parent, 0, true));
            }
        }
        out.extend_from_slice(&header(path, data.len(), false));
        out.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
    out
}

/// Deterministic pseudo-random bytes (xorshift), distinct per `seed`.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
