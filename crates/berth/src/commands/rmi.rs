//! `berth rmi`: untag images and delete those left without a name, never one a container uses.

use anyhow::{bail, Result};
use berth_image::digest::short;
#[cfg(test)]
use berth_image::store::no_containers;
use berth_image::store::ImageUsage;
use berth_image::{Reference, Store};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Images (names or IDs)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of an image with several names, or untag one a stopped container uses
    #[arg(short, long)]
    pub force: bool,
}

/// `rmi` with the engine's answer to "which containers use this image ID".
pub fn run_with(ctx: &Context, args: RmiArgs, usage: ImageUsage) -> Result<()> {
    let store = ctx.store()?;
    let mut failures = Vec::new();
    for input in &args.images {
        if let Err(e) = remove_one(&store, input, args.force, usage) {
            failures.push(format!("{e:#}"));
        }
    }
    let _ = store.gc()?;
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn remove_one(store: &Store, input: &str, force: bool, usage: ImageUsage) -> Result<()> {
    let by_name = Reference::parse(input)
        .ok()
        .filter(|r| r.tag().is_some() && matches!(store.find(r), Ok(Some(_))));
    let image = store.resolve(input)?;
    let used = usage(image.id());
    let id = short(image.id());
    if let Some(name) = &by_name {
        if image.repo_tags.len() > 1 {
            outln!("Untagged: {}", name.familiar());
            store.untag(name)?;
            return Ok(());
        }
    } else if image.repo_tags.len() > 1 && !force {
        bail!("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories");
    }
    if used.running > 0 && by_name.is_none() {
        bail!("conflict: unable to delete {id} (cannot be forced) - image is being used by {} running container(s)", used.running);
    }
    if used.in_use() {
        if !force {
            bail!("conflict: unable to delete {input} (must be forced) - image {id} is being used by {} container(s)", used.containers);
        }
        // Forced: the names go, the image stays (untagged) under its containers' roots.
        for tag in &image.repo_tags {
            outln!("Untagged: {}", tag.familiar());
            store.untag_keeping_image(tag)?;
        }
        return Ok(());
    }
    for name in image.repo_tags.iter().chain(&image.repo_digests) {
        outln!("Untagged: {}", name.familiar());
    }
    // Every manifest of this image ID goes: Docker has one image per ID.
    for same in store.images()?.iter().filter(|i| i.id() == image.id()) {
        store.remove_image(&same.manifest_digest)?;
    }
    outln!("Deleted: {}", image.id());
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The engine seam: images a container uses survive `rmi` and `image prune`.

    use berth_image::archive::import::import;
    use berth_image::store::ImageUse;
    use oci_spec::image::Digest;

    use super::*;
    use crate::cli::GlobalArgs;
    use crate::commands::prune::{self, PruneArgs};

    fn one_file_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "f", &b"hi"[..]).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn images_in_use_are_kept_unless_forced_and_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Context {
            global: GlobalArgs {
                root: dir.path().to_path_buf(),
                insecure_registries: Vec::new(),
            },
        };
        let store = ctx.store().unwrap();
        let name = Reference::parse("used:1").unwrap();
        let image = import(&store, &one_file_tar()[..], &[], Some(&name), "test").unwrap();
        let id = image.id().clone();
        let stopped = |d: &Digest| ImageUse {
            containers: usize::from(*d == id),
            running: 0,
        };
        let running = |d: &Digest| ImageUse {
            containers: usize::from(*d == id),
            running: usize::from(*d == id),
        };
        let rmi = |input: &str, force: bool, usage: ImageUsage| {
            let args = RmiArgs {
                images: vec![input.to_string()],
                force,
            };
            run_with(&ctx, args, usage)
        };
        let e = rmi("used:1", false, &stopped).unwrap_err().to_string();
        assert!(e.contains("is being used by 1 container"), "{e}");
        let e = rmi(id.as_ref(), true, &running).unwrap_err().to_string();
        assert!(e.contains("cannot be forced"), "{e}");
        assert!(store.find(&name).unwrap().is_some());

        // Forced: the name goes, the image stays (untagged) with its layer.
        rmi("used:1", true, &stopped).unwrap();
        assert!(store.find(&name).unwrap().is_none());
        let left = store.images().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id(), &id);
        assert!(store.has_layer(&left[0].diff_ids().unwrap()[0]));

        let prune_all = PruneArgs {
            all: true,
            force: true,
        };
        prune::run_with(&ctx, prune_all, &stopped).unwrap();
        assert_eq!(store.images().unwrap().len(), 1);
        // Once no container uses it, the dangling image is pruned.
        let prune_dangling = PruneArgs {
            all: false,
            force: true,
        };
        prune::run_with(&ctx, prune_dangling, &no_containers).unwrap();
        assert!(store.images().unwrap().is_empty());
    }
}
