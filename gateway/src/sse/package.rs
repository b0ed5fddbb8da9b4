//! The sealed package format (ADR 0009). An object's data is sealed piece by piece (a simple
//! object is one piece, a multipart object one piece per part). A piece is a 32-byte header
//! (magic and a random salt) followed by packages of [`PACKAGE_PLAIN_BYTES`] plaintext bytes
//! (the last one shorter), each sealed with AES-256-GCM and carrying its 16-byte tag. The piece
//! key is HKDF-SHA256(data key, salt); the nonce is the package's sequence number and a final
//! flag; the associated data names the bucket, the key, the part number and the encryption
//! context. So packages cannot be reordered, dropped, truncated or moved to another object or
//! part without failing to open, and a data key used for many pieces never repeats a nonce.

use bytes::{Bytes, BytesMut};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};

/// Plaintext bytes per package for new objects (the record keeps the size each was sealed with).
pub const PACKAGE_PLAIN_BYTES: u32 = 64 * 1024;
/// Bytes of the authentication tag after each package.
pub const TAG_BYTES: u64 = 16;
/// Bytes of a piece header.
pub const HEADER_BYTES: u64 = 32;
/// First bytes of every piece header: the format version.
const MAGIC: &[u8; 4] = b"SSE1";
/// Bytes of the salt in the header.
const SALT_BYTES: usize = HEADER_BYTES as usize - MAGIC.len();
/// HKDF info of a piece key.
const PIECE_KEY_INFO: &[u8] = b"sovereign-s3 sse piece key v1";
/// Domain separation at the start of every package's associated data.
const AAD_DOMAIN: &[u8] = b"sovereign-s3 sse package v1";
/// Marks the upload id in the associated data of a multipart part.
const UPLOAD_DOMAIN: &[u8] = b"upload";
/// Nonce flag of the last package of a piece.
const FINAL_FLAG: u32 = 1;

/// A package that failed to seal or open.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A package did not authenticate: tampered, reordered, truncated or foreign data, or the
    /// wrong key.
    #[error("sealed package {0} failed authentication")]
    Authentication(u64),
    /// The piece header is not one this format writes.
    #[error("sealed piece header is not valid")]
    Header,
    /// The data ended before the packages the record describes.
    #[error("sealed piece ended after {0} of its packages")]
    Truncated(u64),
    /// Key derivation, randomness or sealing failed.
    #[error("sealing failed: {0}")]
    Crypto(&'static str),
}

/// What every package of a piece is bound to.
#[derive(Debug, Clone)]
pub struct Identity {
    aad: Vec<u8>,
}

impl Identity {
    /// The identity of part `part_number` (1 for a simple object) of `bucket`/`key`, sealed
    /// with `context` (the SSE-KMS encryption context, or empty) and `package_bytes`.
    pub fn new(bucket: &str, key: &str, part_number: i32, context: &str, package_bytes: u32) -> Self {
        let mut aad = AAD_DOMAIN.to_vec();
        for field in [bucket.as_bytes(), key.as_bytes(), context.as_bytes()] {
            aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
            aad.extend_from_slice(field);
        }
        aad.extend_from_slice(&part_number.to_be_bytes());
        aad.extend_from_slice(&package_bytes.to_be_bytes());
        Self { aad }
    }

    /// Binds a part to the multipart upload `upload_id` as well, so that a part of one upload
    /// does not open as a part of another upload of the same object under the same key (two
    /// SSE-C uploads with one customer key). Simple objects carry no upload id.
    pub fn in_upload(mut self, upload_id: &[u8; 16]) -> Self {
        self.aad.extend_from_slice(UPLOAD_DOMAIN);
        self.aad.extend_from_slice(upload_id);
        self
    }
}

/// Size arithmetic of sealed pieces with a given package size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Plaintext bytes per package.
    pub package_bytes: u64,
}

impl Layout {
    /// The layout of packages of `package_bytes` plaintext bytes.
    pub fn new(package_bytes: u32) -> Self {
        Self { package_bytes: u64::from(package_bytes.max(1)) }
    }

    /// Packages of a piece of `plain` bytes: an empty piece still has one (empty, final).
    pub fn packages(&self, plain: u64) -> u64 {
        plain.div_ceil(self.package_bytes).max(1)
    }

    /// Stored bytes of a piece of `plain` bytes.
    pub fn sealed_size(&self, plain: u64) -> u64 {
        HEADER_BYTES + plain + TAG_BYTES * self.packages(plain)
    }

    /// Plaintext bytes of a stored piece of `sealed` bytes (0 for a malformed size).
    pub fn plain_size(&self, sealed: u64) -> u64 {
        let body = sealed.saturating_sub(HEADER_BYTES);
        let packages = body.div_ceil(self.package_bytes + TAG_BYTES);
        body.saturating_sub(packages * TAG_BYTES)
    }

    /// Offset within the piece of package `index`'s sealed bytes.
    pub fn package_offset(&self, index: u64) -> u64 {
        HEADER_BYTES + index * (self.package_bytes + TAG_BYTES)
    }
}

fn piece_key(data_key: &[u8; 32], salt: &[u8]) -> Result<LessSafeKey, PackageError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(data_key);
    let okm = prk.expand(&[PIECE_KEY_INFO], &AES_256_GCM).map_err(|_| PackageError::Crypto("key derivation"))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn nonce(sequence: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[..8].copy_from_slice(&sequence.to_be_bytes());
    bytes[8..].copy_from_slice(&(if last { FINAL_FLAG } else { 0 }).to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Seals the packages of one piece in order.
pub struct PieceSealer {
    key: LessSafeKey,
    identity: Identity,
    next: u64,
}

impl PieceSealer {
    /// A sealer under a fresh random salt, and the piece header that carries it.
    pub fn new(data_key: &[u8; 32], identity: Identity) -> Result<(Self, Bytes), PackageError> {
        let mut header = [0u8; HEADER_BYTES as usize];
        header[..MAGIC.len()].copy_from_slice(MAGIC);
        SystemRandom::new().fill(&mut header[MAGIC.len()..]).map_err(|_| PackageError::Crypto("randomness"))?;
        let key = piece_key(data_key, &header[MAGIC.len()..])?;
        Ok((Self { key, identity, next: 0 }, Bytes::copy_from_slice(&header)))
    }

    /// Seals the next package (`last` for the piece's final one): ciphertext and tag.
    pub fn seal(&mut self, plain: &[u8], last: bool) -> Result<Bytes, PackageError> {
        let mut out = BytesMut::with_capacity(plain.len() + TAG_BYTES as usize);
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(self.next, last), Aad::from(&self.identity.aad), &mut out)
            .map_err(|_| PackageError::Crypto("seal"))?;
        out.extend_from_slice(tag.as_ref());
        self.next += 1;
        Ok(out.freeze())
    }
}

/// Opens the packages of one piece.
pub struct PieceOpener {
    key: LessSafeKey,
    identity: Identity,
}

impl PieceOpener {
    /// An opener for the piece whose header is `header`.
    pub fn new(data_key: &[u8; 32], identity: Identity, header: &[u8]) -> Result<Self, PackageError> {
        if header.len() != HEADER_BYTES as usize || !header.starts_with(MAGIC) {
            return Err(PackageError::Header);
        }
        let key = piece_key(data_key, &header[MAGIC.len()..SALT_BYTES + MAGIC.len()])?;
        Ok(Self { key, identity })
    }

    /// Opens package `sequence` (`last` for the piece's final one) in place; returns the
    /// plaintext, or an error when anything about it was altered.
    pub fn open(&self, sequence: u64, last: bool, mut sealed: BytesMut) -> Result<Bytes, PackageError> {
        let plain_len = self
            .key
            .open_in_place(nonce(sequence, last), Aad::from(&self.identity.aad), &mut sealed)
            .map_err(|_| PackageError::Authentication(sequence))?
            .len();
        sealed.truncate(plain_len);
        Ok(sealed.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn identity() -> Identity {
        Identity::new("b", "k", 1, "", 16)
    }

    fn seal_all(plain: &[u8], layout: Layout) -> (Bytes, Vec<Bytes>) {
        let (mut sealer, header) = PieceSealer::new(&KEY, identity()).unwrap();
        let n = layout.packages(plain.len() as u64) as usize;
        let chunks: Vec<&[u8]> = if plain.is_empty() { vec![&[][..]] } else { plain.chunks(16).collect() };
        assert_eq!(chunks.len(), n);
        let packages = chunks.iter().enumerate().map(|(i, c)| sealer.seal(c, i + 1 == n).unwrap()).collect();
        (header, packages)
    }

    #[test]
    fn sizes_roundtrip() {
        let layout = Layout::new(16);
        for plain in [0u64, 1, 15, 16, 17, 32, 33, 1000] {
            let sealed = layout.sealed_size(plain);
            assert_eq!(layout.plain_size(sealed), plain, "{plain}");
        }
        let (header, packages) = seal_all(&[1u8; 33], layout);
        let total = header.len() + packages.iter().map(|p| p.len()).sum::<usize>();
        assert_eq!(total as u64, layout.sealed_size(33));
        assert_eq!(layout.package_offset(2), HEADER_BYTES + 2 * 32);
    }

    #[test]
    fn packages_open_in_place_and_only_there() {
        let layout = Layout::new(16);
        let plain: Vec<u8> = (0..40).collect();
        let (header, packages) = seal_all(&plain, layout);
        let opener = PieceOpener::new(&KEY, identity(), &header).unwrap();
        let mut out = Vec::new();
        for (i, p) in packages.iter().enumerate() {
            out.extend_from_slice(&opener.open(i as u64, i == 2, BytesMut::from(&p[..])).unwrap());
        }
        assert_eq!(out, plain);
        // Reordered, truncated (a non-final package presented as the last), flipped bit, other
        // object, other part, other key, other upload.
        assert!(opener.open(0, false, BytesMut::from(&packages[1][..])).is_err());
        assert!(opener.open(1, true, BytesMut::from(&packages[1][..])).is_err());
        let mut flipped = BytesMut::from(&packages[0][..]);
        flipped[3] ^= 1;
        assert!(opener.open(0, false, flipped).is_err());
        let other = PieceOpener::new(&KEY, Identity::new("b", "other", 1, "", 16), &header).unwrap();
        assert!(other.open(0, false, BytesMut::from(&packages[0][..])).is_err());
        let part = PieceOpener::new(&KEY, Identity::new("b", "k", 2, "", 16), &header).unwrap();
        assert!(part.open(0, false, BytesMut::from(&packages[0][..])).is_err());
        let wrong = PieceOpener::new(&[8; 32], identity(), &header).unwrap();
        assert!(wrong.open(0, false, BytesMut::from(&packages[0][..])).is_err());
        let upload = PieceOpener::new(&KEY, identity().in_upload(&[3; 16]), &header).unwrap();
        assert!(upload.open(0, false, BytesMut::from(&packages[0][..])).is_err());
        assert!(matches!(PieceOpener::new(&KEY, identity(), &header[1..]), Err(PackageError::Header)));
    }

    #[test]
    fn every_piece_gets_its_own_salt() {
        let (_, a) = PieceSealer::new(&KEY, identity()).unwrap();
        let (_, b) = PieceSealer::new(&KEY, identity()).unwrap();
        assert_ne!(a, b);
    }
}
