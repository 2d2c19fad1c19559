//! Blobs by digest: written to a temp file, verified, then renamed into blobs/sha256.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use oci_spec::image::Digest;
use tempfile::NamedTempFile;

use super::Store;
use crate::digest::{self, HashingWriter};
use crate::error::{Error, Result};

/// A blob being written; nothing is visible in the store until `commit` verified it.
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<NamedTempFile>>,
    store: Store,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobWriter {
    /// Checks size and digest, then moves the blob into place. `object` names it in errors.
    pub fn commit(
        self,
        object: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest> {
        let (actual, count, file) = self.inner.finish();
        if let Some(size) = size {
            if size != count {
                return Err(Error::SizeMismatch {
                    object: object.to_string(),
                    expected: size,
                    got: count,
                });
            }
        }
        if let Some(expected) = expected {
            digest::verify(|| object.to_string(), expected, &actual)?;
        }
        let tmp = file
            .into_inner()
            .map_err(|e| Error::io("write blob", self.store.tmp_dir())(e.into_error()))?;
        let path = self.store.blob_path(&actual);
        tmp.persist(&path).map_err(|e| Error::Io {
            step: "rename blob into place",
            path,
            source: e.error,
        })?;
        Ok(actual)
    }
}

impl Store {
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(digest.algorithm().as_ref())
            .join(digest.digest())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(Error::io("open blob", path))
    }

    /// Reads a small blob (manifest, config) and checks it still matches its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(Error::io("read blob", &path))?;
        digest::verify(
            || format!("blob {} in the store", path.display()),
            digest,
            &digest::sha256(&bytes),
        )?;
        Ok(bytes)
    }

    /// Starts writing a blob through a temp file.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let tmp = NamedTempFile::new_in(self.tmp_dir())
            .map_err(Error::io("create temp blob in", self.tmp_dir()))?;
        Ok(BlobWriter {
            inner: HashingWriter::new(BufWriter::with_capacity(1 << 20, tmp)),
            store: self.clone(),
        })
    }

    /// Stores `bytes`, checking them against `expected` if given; returns their digest.
    pub fn put_blob(
        &self,
        object: &str,
        expected: Option<&Digest>,
        bytes: &[u8],
    ) -> Result<Digest> {
        let actual = digest::sha256(bytes);
        if let Some(expected) = expected {
            digest::verify(|| object.to_string(), expected, &actual)?;
        }
        if self.has_blob(&actual) {
            return Ok(actual);
        }
        let mut writer = self.blob_writer()?;
        writer
            .write_all(bytes)
            .map_err(Error::io("write blob", self.tmp_dir()))?;
        writer.commit(object, Some(&actual), None)
    }

    /// Streams a blob in from `reader`, verifying digest and size.
    pub fn put_blob_reader(
        &self,
        object: &str,
        expected: Option<&Digest>,
        size: Option<u64>,
        reader: &mut dyn Read,
    ) -> Result<Digest> {
        let mut writer = self.blob_writer()?;
        io::copy(reader, &mut writer).map_err(Error::io("copy blob", self.tmp_dir()))?;
        writer.commit(object, expected, size)
    }
}
