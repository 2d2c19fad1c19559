//! Layer compression: which media types we accept, and a decoder chosen by the stream's magic.

use std::io::{self, BufRead, Read};

use crate::error::{Error, Result};

/// Layer media types we can unpack (OCI and Docker schema 2, gzip, zstd or plain).
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// Refuses a layer we would not know how to unpack, before anything is downloaded.
pub fn check_layer_media_type(object: impl FnOnce() -> String, media_type: &str) -> Result<()> {
    if LAYER_TYPES.contains(&media_type) {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType {
            object: object(),
            media_type: media_type.to_string(),
        })
    }
}

/// A gzip, zstd or plain tar stream, decoded; `into_inner` gives the source back so its
/// unread tail can still be hashed.
#[allow(clippy::large_enum_variant)] // one per layer stream; boxing buys nothing
pub enum Decoder<R: BufRead> {
    Gzip(flate2::bufread::MultiGzDecoder<R>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
    Plain(R),
}

impl<R: BufRead> Decoder<R> {
    pub fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
            Decoder::Plain(r) => r,
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::Plain(r) => r.read(buf),
        }
    }
}

/// A decoder chosen by the stream's magic bytes rather than the media type, because
/// archives in the wild label compressed layers as plain and vice versa.
pub fn decoder<R: BufRead>(mut reader: R) -> io::Result<Decoder<R>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Decoder::Gzip(flate2::bufread::MultiGzDecoder::new(reader)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(
            reader,
        )?))
    } else {
        Ok(Decoder::Plain(reader))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_all_three() {
        let plain = b"hello layer".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for input in [&plain, &gz, &zst] {
            let mut out = Vec::new();
            decoder(&input[..]).unwrap().read_to_end(&mut out).unwrap();
            assert_eq!(out, plain);
        }
        assert!(check_layer_media_type(
            || "l".into(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        )
        .is_ok());
        assert!(check_layer_media_type(|| "l".into(), "application/x-helm").is_err());
    }
}
