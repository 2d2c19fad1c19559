//! A container's changes as a layer: an overlay upper directory read as a tar stream (overlay
//! whiteouts turned into OCI ones), compressed into a blob and adopted as an unpacked layer; and
//! the same directory read as `docker diff`'s A/C/D list. What `build` and `commit` share.
//!
//! The tar is deterministic: entries in byte order of their paths, headers holding only what
//! the files themselves hold (mode, owner, size, mtime, link target, device numbers, the
//! xattrs that are not overlayfs' own), no user or group names, no access or change times.
//! The same tree gives the same diff ID; `clamp_mtime` (SOURCE_DATE_EPOCH) makes the times
//! reproducible too.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, Digest, MediaType};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::store::Store;

/// How a new layer's blob is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
}

impl Compression {
    pub fn parse(s: &str) -> Option<Compression> {
        match s {
            "gzip" => Some(Compression::Gzip),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    fn media_type(self) -> MediaType {
        match self {
            Compression::Gzip => MediaType::ImageLayerGzip,
            Compression::Zstd => MediaType::ImageLayerZstd,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LayerOptions {
    pub compression: Compression,
    /// SOURCE_DATE_EPOCH: no entry's mtime is later than this.
    pub clamp_mtime: Option<i64>,
}

/// A layer now in the store: its blob (for the manifest) and its diff ID (for the config).
#[derive(Clone, Debug)]
pub struct NewLayer {
    pub blob: Descriptor,
    pub diff_id: Digest,
    /// Bytes of its regular files, as `layer_size` reports them.
    pub size: u64,
}

/// Stores the changes in `upper` (unmounted) as a layer; None when there are none. The
/// directory itself becomes the unpacked layer (renamed into the store, overlay's private
/// xattrs removed), so nothing is written twice; `upper` is gone afterwards either way.
pub fn store_upper(store: &Store, upper: &Path, opts: &LayerOptions) -> Result<Option<NewLayer>> {
    let empty = fs::read_dir(upper)
        .map_err(Error::io("read", upper))?
        .next()
        .is_none();
    if empty {
        let _ = fs::remove_dir(upper);
        return Ok(None);
    }
    let _hold = store.lock_shared()?;
    let blob = store.blob_writer()?;
    let mut hashing =
        DiffWriter::new(opts.compression, blob).map_err(Error::io("start compressing", upper))?;
    let size = write_tar(upper, &mut hashing, opts, true)?;
    let (diff_id, blob) = hashing.finish().map_err(Error::io("compress", upper))?;
    let blob_digest = blob.commit(&format!("layer of {}", upper.display()), None, None)?;
    let blob_size = fs::metadata(store.blob_path(&blob_digest))
        .map_err(Error::io("stat", store.blob_path(&blob_digest)))?
        .len();
    adopt(store, upper, &diff_id, &blob_digest, size)?;
    Ok(Some(NewLayer {
        blob: Descriptor::new(opts.compression.media_type(), blob_size, blob_digest),
        diff_id,
        size,
    }))
}

/// Stores the tree `dir` as a layer, leaving `dir` as it is (a running container's upper
/// directory): the tar is compressed into a blob and the layer unpacked from it. `skip` leaves
/// out paths relative to `dir`.
pub fn store_copy(
    store: &Store,
    dir: &Path,
    opts: &LayerOptions,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<NewLayer> {
    let _hold = store.lock_shared()?;
    let blob = store.blob_writer()?;
    let mut hashing =
        DiffWriter::new(opts.compression, blob).map_err(Error::io("start compressing", dir))?;
    let size = write_tar_skipping(dir, &mut hashing, opts, false, skip)?;
    let (diff_id, blob) = hashing.finish().map_err(Error::io("compress", dir))?;
    let blob_digest = blob.commit(&format!("layer of {}", dir.display()), None, None)?;
    let blob_path = store.blob_path(&blob_digest);
    let blob_size = fs::metadata(&blob_path)
        .map_err(Error::io("stat", blob_path))?
        .len();
    store.ensure_layer(&blob_digest, &diff_id)?;
    Ok(NewLayer {
        blob: Descriptor::new(opts.compression.media_type(), blob_size, blob_digest),
        diff_id,
        size,
    })
}

/// The mount points the engine makes in a container's upper directory when the image lacks
/// them. Docker keeps them in an "init" layer of its own (moby's initlayer), so they are
/// never among a container's changes.
const MOUNT_POINTS: [&str; 11] = [
    "/.dockerenv",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];

/// Whether `path` (absolute in the container) is not a change of the container's own: one of
/// the engine's mount points or below one, or a directory copied up only to hold them (its
/// mode and owner as a lower layer has them).
pub fn engine_made(upper: &Path, path: &Path, lowers: &[PathBuf]) -> bool {
    if MOUNT_POINTS.iter().any(|m| path.starts_with(m)) {
        return true;
    }
    let inner = path.strip_prefix("/").unwrap_or(path);
    let here = upper.join(inner);
    let Ok(meta) = fs::symlink_metadata(&here) else {
        return false;
    };
    let lower = lowers
        .iter()
        .find_map(|l| fs::symlink_metadata(l.join(inner)).ok());
    let same = lower.is_some_and(|l| {
        l.is_dir() && (l.mode(), l.uid(), l.gid()) == (meta.mode(), meta.uid(), meta.gid())
    });
    if !meta.is_dir() || !same || is_opaque(&here) {
        return false;
    }
    let Ok(children) = sorted_entries(&here) else {
        return false;
    };
    !children.is_empty()
        && children
            .iter()
            .all(|c| engine_made(upper, &path.join(c), lowers))
}

fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::lgetxattr(
        path,
        berth_sys::rootless::overlay_xattr("opaque").as_str(),
        &mut value,
    )
    .is_ok()
}

/// A container's changes as `docker diff` lists them: [`changes`] without what the engine
/// made ([`engine_made`]).
pub fn container_changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let all = changes(upper, lowers)?;
    Ok(all
        .into_iter()
        .filter(|c| !engine_made(upper, Path::new(&c.path), lowers))
        .collect())
}

/// Renames `upper` into the store as the layer `diff_id`; if the store has it already, or the
/// rename cannot be done (another filesystem), the store's copy is used or unpacked from the blob.
fn adopt(store: &Store, upper: &Path, diff_id: &Digest, blob: &Digest, size: u64) -> Result<()> {
    if store.has_layer(diff_id) {
        let _ = fs::remove_dir_all(upper);
        return Ok(());
    }
    let layer = store.temp_layer()?;
    let diff = layer.diff_dir();
    fs::remove_dir(&diff).map_err(Error::io("remove", &diff))?;
    if fs::rename(upper, &diff).is_ok() {
        return layer.commit(diff_id, size);
    }
    drop(layer);
    let _ = fs::remove_dir_all(upper);
    store.ensure_layer(blob, diff_id)
}

/// The uncompressed tar of `upper`, hashed for the diff ID, on its way into the compressor.
struct DiffWriter {
    hasher: Sha256,
    encoder: Encoder,
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<crate::store::BlobWriter>),
    Zstd(zstd::stream::write::Encoder<'static, crate::store::BlobWriter>),
}

impl DiffWriter {
    fn new(compression: Compression, blob: crate::store::BlobWriter) -> io::Result<DiffWriter> {
        let encoder = match compression {
            // Level 1: a layer is written on every build step; the few percent a slower level
            // saves on the wire are not worth seconds on each build.
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                blob,
                flate2::Compression::fast(),
            )),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(blob, 3)?),
        };
        Ok(DiffWriter {
            hasher: Sha256::new(),
            encoder,
        })
    }

    fn finish(self) -> io::Result<(Digest, crate::store::BlobWriter)> {
        let hex = format!("{:x}", self.hasher.finalize());
        let diff_id = crate::digest::parse_digest(&format!("sha256:{hex}"))
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut blob = match self.encoder {
            Encoder::Gzip(e) => e.finish()?,
            Encoder::Zstd(e) => e.finish()?,
        };
        blob.flush()?;
        Ok((diff_id, blob))
    }
}

impl Write for DiffWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.encoder {
            Encoder::Gzip(e) => e.write(buf)?,
            Encoder::Zstd(e) => e.write(buf)?,
        };
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Writes `dir` as a layer tar into `out`; returns the bytes of its regular files. With
/// `strip`, overlayfs' own xattrs (but the opaque mark) are removed from the tree as it is read,
/// so that it can serve as a plain lower directory.
pub fn write_tar(dir: &Path, out: impl Write, opts: &LayerOptions, strip: bool) -> Result<u64> {
    write_tar_skipping(dir, out, opts, strip, &|_| false)
}

/// [`write_tar`] leaving out the entries (and what is below them) for which `skip` holds of
/// their path relative to `dir`.
pub fn write_tar_skipping(
    dir: &Path,
    out: impl Write,
    opts: &LayerOptions,
    strip: bool,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<u64> {
    let mut walk = TarWalk {
        builder: tar::Builder::new(out),
        opts,
        strip,
        skip,
        links: HashMap::new(),
        size: 0,
    };
    walk.dir(dir, Path::new(""))
        .map_err(Error::io("write the layer of", dir))?;
    walk.builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(Error::io("write the layer of", dir))?;
    Ok(walk.size)
}

struct TarWalk<'a, W: Write> {
    builder: tar::Builder<W>,
    opts: &'a LayerOptions,
    strip: bool,
    skip: &'a dyn Fn(&Path) -> bool,
    /// (dev, inode) of files with several links -> the first path written, for hard links.
    links: HashMap<(u64, u64), PathBuf>,
    size: u64,
}

/// A directory's entries in byte order of their names.
fn sorted_entries(dir: &Path) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<_> = fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names)
}

impl<W: Write> TarWalk<'_, W> {
    fn dir(&mut self, dir: &Path, rel: &Path) -> io::Result<()> {
        for name in sorted_entries(dir)? {
            let path = dir.join(&name);
            let rel = rel.join(&name);
            if (self.skip)(&rel) {
                continue;
            }
            let meta = fs::symlink_metadata(&path)?;
            let kind = meta.file_type();
            if kind.is_char_device() && meta.rdev() == 0 {
                let wh = rel.with_file_name(format!(".wh.{}", name.to_string_lossy()));
                self.whiteout(&wh, &meta)?;
                continue;
            }
            let xattrs = self.xattrs(&path)?;
            let mut header = self.header(&meta);
            if kind.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                self.append(&mut header, &rel, &xattrs, io::empty())?;
                if xattrs
                    .iter()
                    .any(|(k, _)| *k == berth_sys::rootless::overlay_xattr("opaque"))
                {
                    self.whiteout(&rel.join(".wh..wh..opq"), &meta)?;
                }
                self.dir(&path, &rel)?;
            } else if kind.is_symlink() {
                header.set_entry_type(tar::EntryType::Symlink);
                let target = fs::read_link(&path)?;
                self.pax(&xattrs)?;
                self.builder.append_link(&mut header, &rel, &target)?;
            } else if kind.is_file() {
                if meta.nlink() > 1 {
                    if let Some(first) = self.links.get(&(meta.dev(), meta.ino())).cloned() {
                        header.set_entry_type(tar::EntryType::Link);
                        header.set_size(0);
                        self.builder.append_link(&mut header, &rel, &first)?;
                        continue;
                    }
                    self.links.insert((meta.dev(), meta.ino()), rel.clone());
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(meta.len());
                self.size += meta.len();
                let file = fs::File::open(&path)?;
                self.append(&mut header, &rel, &xattrs, file)?;
            } else {
                let kind_type = if kind.is_char_device() {
                    tar::EntryType::Char
                } else if kind.is_block_device() {
                    tar::EntryType::Block
                } else if kind.is_fifo() {
                    tar::EntryType::Fifo
                } else {
                    continue; // sockets have no place in a layer
                };
                header.set_entry_type(kind_type);
                let rdev = meta.rdev();
                header.set_device_major(rustix::fs::major(rdev))?;
                header.set_device_minor(rustix::fs::minor(rdev))?;
                self.append(&mut header, &rel, &xattrs, io::empty())?;
            }
        }
        Ok(())
    }

    fn header(&self, meta: &fs::Metadata) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_size(0);
        let mtime = match self.opts.clamp_mtime {
            Some(epoch) => meta.mtime().min(epoch),
            None => meta.mtime(),
        };
        header.set_mtime(u64::try_from(mtime).unwrap_or(0));
        header
    }

    fn whiteout(&mut self, rel: &Path, meta: &fs::Metadata) -> io::Result<()> {
        let mut header = self.header(meta);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0);
        header.set_uid(0);
        header.set_gid(0);
        self.builder.append_data(&mut header, rel, io::empty())
    }

    fn append(
        &mut self,
        header: &mut tar::Header,
        rel: &Path,
        xattrs: &[(String, Vec<u8>)],
        data: impl io::Read,
    ) -> io::Result<()> {
        self.pax(xattrs)?;
        self.builder.append_data(header, rel, data)
    }

    /// The file's xattrs as PAX records (`SCHILY.xattr.<name>`), before its own header.
    fn pax(&mut self, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
        let records: Vec<(String, &[u8])> = xattrs
            .iter()
            .filter(|(k, _)| !k.starts_with(berth_sys::rootless::overlay_xattr_prefix()))
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.builder
            .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
    }

    /// The file's xattrs, sorted; overlay's private ones removed from the tree under `strip`.
    fn xattrs(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let all = crate::xattr::all(
            |names| rustix::fs::llistxattr(path, names),
            |name, value| rustix::fs::lgetxattr(path, name, value),
        )?;
        let mut out = Vec::new();
        for (name, value) in all {
            let name = String::from_utf8_lossy(name.to_bytes()).into_owned();
            if name.starts_with(berth_sys::rootless::overlay_xattr_prefix())
                && *name != berth_sys::rootless::overlay_xattr("opaque")
            {
                if self.strip {
                    rustix::fs::lremovexattr(path, name.as_str())?;
                }
                continue;
            }
            out.push((name, value));
        }
        out.sort();
        Ok(out)
    }
}

/// One line of `docker diff`: A added, C changed, D deleted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub path: String,
    pub kind: char,
}

/// The changes an upper directory holds over its lower layers (top first), as Docker's overlay
/// driver lists them: a whiteout is a deletion, an entry a lower layer has is a change (its
/// copied-up parent directories among them), anything else an addition; sorted by path.
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    walk_changes(upper, Path::new("/"), lowers, &mut out)
        .map_err(Error::io("list the changes in", upper))?;
    out.sort();
    Ok(out)
}

fn walk_changes(
    dir: &Path,
    rel: &Path,
    lowers: &[PathBuf],
    out: &mut Vec<Change>,
) -> io::Result<()> {
    for name in sorted_entries(dir)? {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let meta = fs::symlink_metadata(&path)?;
        let text = rel.to_string_lossy().into_owned();
        let in_lower = || {
            let inner = rel.strip_prefix("/").unwrap_or(&rel);
            lowers
                .iter()
                .any(|l| fs::symlink_metadata(l.join(inner)).is_ok())
        };
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            out.push(Change {
                path: text,
                kind: 'D',
            });
            continue;
        }
        let kind = if in_lower() { 'C' } else { 'A' };
        out.push(Change { path: text, kind });
        if meta.is_dir() {
            walk_changes(&path, &rel, lowers, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(tar: &[u8]) -> Vec<(String, tar::EntryType, u32)> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.entry_type(),
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_become_oci_entries_in_byte_order() {
        let t = tempfile::tempdir().unwrap();
        let up = t.path();
        fs::create_dir(up.join("d")).unwrap();
        fs::write(up.join("d/b"), "b").unwrap();
        fs::write(up.join("B"), "B").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            up.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        let mut tar = Vec::new();
        let opts = LayerOptions::default();
        write_tar(up, &mut tar, &opts, false).unwrap();
        let names: Vec<String> = entries(&tar).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["B", "d", "d/b", ".wh.gone"]);
        let mut again = Vec::new();
        write_tar(up, &mut again, &opts, false).unwrap();
        assert_eq!(tar, again, "the same tree gives the same bytes");
    }
}
