//! The IDX format of MNIST and Fashion-MNIST: a big-endian header, then raw `u8` data.
//!
//! Header: two zero bytes, an element-type byte (`0x08` for unsigned bytes, the only type these
//! datasets use), the number of dimensions, then one big-endian `u32` per dimension. A file may be
//! gzip-compressed; that is detected from its first bytes, not its name.

use std::fs;
use std::io::Read;
use std::path::Path;

use crate::{DataError, Result};

/// The magic number of an IDX file of unsigned bytes with `ndims` dimensions (`0x00000803` for
/// images, `0x00000801` for labels).
pub const fn magic(ndims: u8) -> u32 {
    0x0800 | ndims as u32
}

/// An IDX array: its dimensions and its bytes in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes with exactly `ndims` dimensions, raw or gzip.
pub fn read(path: &Path, ndims: u8) -> Result<IdxArray> {
    let bytes = fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| {
                DataError::malformed(path, format!("gzip stream is corrupt or truncated ({e})"))
            })?;
        out
    } else {
        bytes
    };
    parse(&bytes, ndims).map_err(|problem| DataError::malformed(path, problem))
}

/// Parses IDX bytes; the error is a description of the problem, without the file name.
pub fn parse(bytes: &[u8], ndims: u8) -> std::result::Result<IdxArray, String> {
    let expected = magic(ndims);
    let Some(head) = bytes.get(..4) else {
        return Err(format!(
            "file is {} bytes long, too short for an IDX header",
            bytes.len()
        ));
    };
    let found = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if found != expected {
        return Err(format!(
            "magic 0x{expected:08x} expected (unsigned bytes, {ndims} dimension{}), found 0x{found:08x}",
            if ndims == 1 { "" } else { "s" }
        ));
    }
    let header_len = 4 + 4 * ndims as usize;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(format!(
            "header declares {ndims} dimensions but the file ends after {} bytes",
            bytes.len()
        ));
    };
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    let data = &bytes[header_len..];
    if data.len() < len {
        return Err(format!(
            "truncated: dimensions {dims:?} need {len} data bytes, found {}",
            data.len()
        ));
    }
    if data.len() > len {
        return Err(format!(
            "{} unexpected bytes after the {len} data bytes of dimensions {dims:?}",
            data.len() - len
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::idx_bytes;

    fn check(bytes: &[u8], ndims: u8, expected: std::result::Result<Vec<usize>, &str>) {
        match (parse(bytes, ndims), expected) {
            (Ok(a), Ok(dims)) => assert_eq!(a.dims, dims),
            (Err(e), Err(fragment)) => assert!(e.contains(fragment), "{e:?} lacks {fragment:?}"),
            (got, want) => panic!("got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn parses_and_rejects() {
        let images = idx_bytes(&[2, 3, 3], &[7; 18]);
        check(&images, 3, Ok(vec![2, 3, 3]));
        check(&idx_bytes(&[4], &[1, 2, 3, 4]), 1, Ok(vec![4]));
        check(&images, 1, Err("magic 0x00000801 expected"));
        check(
            &images[..20],
            3,
            Err("truncated: dimensions [2, 3, 3] need 18"),
        );
        check(&images[..6], 3, Err("header declares 3 dimensions"));
        check(&[0, 0], 3, Err("too short"));
        let mut long = images.clone();
        long.push(0);
        check(&long, 3, Err("1 unexpected bytes"));
        let mut float = images;
        float[2] = 0x0d;
        check(&float, 3, Err("found 0x00000d03"));
    }

    #[test]
    fn reads_gzip_and_names_the_file_when_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = idx_bytes(&[3], &[1, 2, 3]);
        let gz = crate::testutil::gzip(&bytes);
        let ok = dir.path().join("labels.gz");
        std::fs::write(&ok, &gz).unwrap();
        assert_eq!(read(&ok, 1).unwrap().data, vec![1, 2, 3]);
        let cut = dir.path().join("cut-labels-idx1-ubyte.gz");
        std::fs::write(&cut, &gz[..gz.len() - 6]).unwrap();
        let err = read(&cut, 1).unwrap_err().to_string();
        assert!(err.contains("cut-labels-idx1-ubyte.gz"), "{err}");
        assert!(err.contains("gzip"), "{err}");
    }
}
