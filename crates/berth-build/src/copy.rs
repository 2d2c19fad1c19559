//! COPY and ADD: the sources (the context, an earlier stage, an image), Docker's rules for the
//! destination (a trailing `/` or an existing directory takes sources by name, a directory
//! source gives its contents), owners (root for the context, kept from a stage, `--chown`),
//! `--chmod`, heredocs, and ADD's local archives unpacked in place. Every destination path is
//! resolved inside the image's root.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};
use sha2::{Digest as _, Sha256};

use crate::builder::{Builder, State};
use crate::cache::Layer;
use crate::container::StepDir;
use crate::context::{sources, Source};
use crate::error::{Error, Result};
use crate::fsops::{self, Attrs, Owner, Root};
use crate::instruction::Copy;
use crate::parser::heredoc_markers;
use crate::stage::{clean_path, now};

/// Docker's refusal of several sources into one file.
const MANY_SOURCES: &str =
    "When using COPY with more than one source file, the destination must be a directory and end with a /";

/// (sources, heredoc files, words for the history).
type CopySources = (Vec<String>, Vec<(String, String)>, Vec<String>);

/// A URL as a source: COPY never takes one, ADD would download it, which berth does not.
fn url_refused(add: bool, url: &str) -> String {
    match add {
        false => format!("COPY {url}: source can't be a URL for COPY"),
        true => format!(
            "ADD {url}: berth build does not download remote files; fetch it into the context and ADD it from there"
        ),
    }
}

/// Where a COPY's files come from.
#[derive(Clone, Debug)]
pub enum Origin {
    Context,
    /// A stage's or an image's layers, bottom first.
    Layers(Vec<Layer>),
}

/// A COPY or ADD with its words expanded.
pub struct CopyPlan {
    add: bool,
    origin: Origin,
    srcs: Vec<String>,
    /// Absolute and clean.
    dest: String,
    /// The destination was written as a directory (a trailing `/`, `.`).
    dest_is_dir: bool,
    chown: Option<String>,
    chmod: Option<u32>,
    /// `COPY <<EOF /file`: (name, content), the files the heredocs make.
    docs: Vec<(String, String)>,
}

/// The read-only view of a stage's or an image's layers that COPY --from reads.
pub struct OriginRoot {
    dir: PathBuf,
    mounted: bool,
}

impl Drop for OriginRoot {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Builder<'_> {
    /// The expanded COPY or ADD, its history line and what its key depends on: the origin,
    /// the flags and the content of every source (read through the stat cache).
    pub(crate) fn copy_plan(
        &mut self,
        st: &State,
        stage: usize,
        line: usize,
        c: &Copy,
    ) -> Result<(CopyPlan, String, Vec<Vec<u8>>)> {
        let raw_dest = self.expand(st, line, &c.dest)?;
        let dest_is_dir = raw_dest.ends_with('/') || raw_dest == "." || raw_dest.is_empty();
        let dest = match raw_dest.starts_with('/') {
            true => clean_path(&raw_dest),
            false => clean_path(&format!("{}/{raw_dest}", st.config.config.working_dir)),
        };
        let (srcs, docs, shown) = self.copy_sources(st, line, c)?;
        if srcs.len() + docs.len() > 1 && !dest_is_dir {
            return Err(self.syntax(line, MANY_SOURCES));
        }
        let chmod = match &c.chmod {
            Some(m) => Some(self.chmod(st, line, m)?),
            None => None,
        };
        let chown = c
            .chown
            .as_deref()
            .map(|o| self.expand(st, line, o))
            .transpose()?;
        let origin = match &c.from {
            Some(from) => {
                let from = self.expand(st, line, from)?;
                self.origin(&from, stage)?
            }
            None => Origin::Context,
        };
        let kw = if c.add { "ADD" } else { "COPY" };
        let history = format!("{kw} {} {raw_dest} # buildkit", shown.join(" "));
        let mut parts = vec![
            format!("{chown:?} {chmod:?} {dest} {dest_is_dir}").into_bytes(),
            self.origin_identity(&origin).into_bytes(),
        ];
        parts.extend(docs.iter().map(|(n, c)| format!("{n}\0{c}").into_bytes()));
        parts.push(match origin {
            Origin::Context => self.context_digest(&srcs)?,
            _ => srcs.join("\0").into_bytes(),
        });
        let plan = CopyPlan {
            add: c.add,
            origin,
            srcs,
            dest,
            dest_is_dir,
            chown,
            chmod,
            docs,
        };
        Ok((plan, history, parts))
    }

    /// The sources expanded, the heredocs' files (name, content), and the words as the history
    /// shows them. A URL is refused: nothing is downloaded.
    fn copy_sources(&self, st: &State, line: usize, c: &Copy) -> Result<CopySources> {
        let (mut srcs, mut docs, mut shown) = (Vec::new(), Vec::new(), Vec::new());
        for s in &c.srcs {
            let Some((name, _, _)) = heredoc_markers(s)
                .into_iter()
                .next()
                .filter(|_| s.starts_with("<<"))
            else {
                let src = self.expand(st, line, s)?;
                if src.contains("://") {
                    return Err(self.syntax(line, url_refused(c.add, &src)));
                }
                shown.push(src.clone());
                srcs.push(src);
                continue;
            };
            let doc = c.heredocs.iter().find(|d| d.name == name);
            let doc = doc.ok_or_else(|| self.syntax(line, format!("no heredoc {name}")))?;
            let content = match doc.expand {
                true => self
                    .lexer
                    .heredoc(&doc.content, &st.vars())
                    .map_err(|e| self.syntax(line, e))?,
                false => doc.content.clone(),
            };
            docs.push((name, content));
            shown.push(s.clone());
        }
        Ok((srcs, docs, shown))
    }

    /// `--chmod`: an octal mode.
    fn chmod(&self, st: &State, line: usize, mode: &str) -> Result<u32> {
        let m = self.expand(st, line, mode)?;
        u32::from_str_radix(&m, 8)
            .ok()
            .filter(|n| *n <= 0o7777)
            .ok_or_else(|| {
                let why = format!("invalid chmod parameter {m:?}: give an octal mode such as 755");
                self.syntax(line, why)
            })
    }

    /// The content of what `patterns` name in the context, .dockerignore applied.
    pub(crate) fn context_digest(&mut self, patterns: &[String]) -> Result<Vec<u8>> {
        let ctx = self.context;
        let mut hasher = Sha256::new();
        for pattern in patterns {
            for s in sources(&ctx.root, pattern, Some(&ctx.ignore))? {
                hasher.update(s.rel.as_bytes());
                hasher.update(b"\0");
                crate::context::digest_tree(&mut hasher, &s.host, &mut self.stats, &|p| {
                    ctx.skips(p)
                })?;
            }
        }
        Ok(hasher.finalize().to_vec())
    }

    /// Does the COPY or ADD in the step's root.
    pub(crate) fn copy_step(&mut self, step: &StepDir, plan: &CopyPlan) -> Result<()> {
        let rootfs = step.rootfs();
        let dst = Root::open(&rootfs).map_err(Error::io("open", &rootfs))?;
        let time = self.opts.source_date_epoch.unwrap_or_else(now);
        let chown = match &plan.chown {
            Some(spec) => Some(self.owner(&rootfs, spec)?),
            None => None,
        };
        let dir_owner = chown.unwrap_or_default();
        for (name, content) in &plan.docs {
            let (parent, file) = match plan.dest_is_dir {
                true => (PathBuf::from(&plan.dest), PathBuf::from(name)),
                false => split(&plan.dest),
            };
            let fd = dst
                .mkdir_all(&parent, dir_owner, time)
                .map_err(Error::io("create", &parent))?;
            let mode = plan.chmod.unwrap_or(0o644);
            fsops::write_file(
                fd.as_fd(),
                file.as_os_str(),
                content.as_bytes(),
                dir_owner,
                mode,
                time,
            )
            .map_err(Error::io("write", parent.join(&file)))?;
        }
        if plan.srcs.is_empty() {
            return Ok(());
        }
        let ctx = self.context;
        let skip = |p: &Path| ctx.skips(p);
        let (src_root, ignore, owner) = match &plan.origin {
            Origin::Context => (None, Some(&ctx.ignore), Some(chown.unwrap_or_default())),
            origin => (Some(self.origin_root(origin)?), None, chown),
        };
        let src_root = src_root.as_ref().unwrap_or(&ctx.root);
        let attrs = Attrs {
            skip: ignore.map(|_| &skip as &dyn Fn(&Path) -> bool),
            owner,
            chmod: plan.chmod,
            now: time,
        };
        let mut found = Vec::new();
        for pattern in &plan.srcs {
            found.extend(sources(src_root, pattern, ignore)?);
        }
        if found.len() > 1 && !plan.dest_is_dir {
            return Err(Error::Invalid(MANY_SOURCES.into()));
        }
        for source in &found {
            let archive = plan.add && crate::extract::is_archive(&source.host);
            let done = match archive {
                true => {
                    crate::extract::unpack(&dst, &source.host, Path::new(&plan.dest), chown, time)
                }
                false => copy_one(&dst, source, plan, &attrs, dir_owner),
            };
            done.map_err(Error::io("copy into the image", format!("/{}", source.rel)))?;
        }
        Ok(())
    }

    /// The origin's files, mounted read-only once per build.
    pub(crate) fn origin_root(&mut self, origin: &Origin) -> Result<Root> {
        let identity = self.origin_identity(origin);
        if !self.roots.contains_key(&identity) {
            let layers = match origin {
                Origin::Context => {
                    return Root::open(&self.context.root.path)
                        .map_err(Error::io("open", &self.context.root.path))
                }
                Origin::Layers(l) => l.clone(),
            };
            let dir = self.tmp.path().join(format!("origin-{}", self.roots.len()));
            std::fs::create_dir(&dir).map_err(Error::io("create", &dir))?;
            let mut root = OriginRoot {
                dir,
                mounted: false,
            };
            let mut lowers = self.lower_dirs(&layers)?;
            if !lowers.is_empty() {
                // Without an upper directory overlayfs wants two lower ones at least.
                let empty = self.tmp.path().join("empty");
                std::fs::create_dir_all(&empty).map_err(Error::io("create", &empty))?;
                lowers.push(empty);
                let data = lowers
                    .iter()
                    .map(|p| p.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(":");
                let data = format!("lowerdir={data}");
                nix::mount::mount(
                    Some("overlay"),
                    &root.dir,
                    Some("overlay"),
                    MsFlags::MS_RDONLY,
                    Some(data.as_str()),
                )
                .map_err(|e| {
                    Error::io("mount the layers of a COPY --from at", &root.dir)(e.into())
                })?;
                root.mounted = true;
            }
            self.roots.insert(identity.clone(), root);
        }
        let dir = &self.roots[&identity].dir;
        Root::open(dir).map_err(Error::io("open", dir))
    }
}

/// `path` as (parent, name).
fn split(path: &str) -> (PathBuf, PathBuf) {
    let p = Path::new(path);
    let parent = p.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = p.file_name().map(PathBuf::from).unwrap_or_default();
    (parent, name)
}

/// One source by Docker's rules: a directory gives its contents to the destination
/// directory; a file goes into the destination if it is a directory (written so, or
/// existing), else becomes it.
fn copy_one(
    dst: &Root,
    source: &Source,
    plan: &CopyPlan,
    attrs: &Attrs,
    dir_owner: Owner,
) -> std::io::Result<()> {
    let meta = std::fs::metadata(&source.host)?;
    let dest = Path::new(&plan.dest);
    if meta.is_dir() {
        let existed = dst.is_dir(dest);
        let fd = dst.mkdir_all(dest, dir_owner, attrs.now)?;
        fsops::copy_children(dst, &source.host, &fd, dest, attrs)?;
        // A directory the copy made takes the source's attributes (BuildKit's copier).
        if !existed && !plan.dest_is_dir {
            fsops::copy_attrs(fd.as_fd(), &meta, attrs)?;
        }
        return Ok(());
    }
    let (parent, name) = match plan.dest_is_dir || dst.is_dir(dest) {
        true => {
            let name = Path::new(&source.rel)
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_default();
            (dest.to_path_buf(), name)
        }
        false => split(&plan.dest),
    };
    if name.as_os_str().is_empty() {
        return Err(std::io::Error::other(
            "the source has no name to copy it under",
        ));
    }
    let fd = dst.mkdir_all(&parent, dir_owner, attrs.now)?;
    fsops::copy(
        dst,
        &source.host,
        fd.as_fd(),
        &parent,
        name.as_os_str(),
        attrs,
    )
}
