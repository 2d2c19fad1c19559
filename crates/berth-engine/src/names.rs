//! Container names: Docker's rule for given names, a generated `adjective_name` otherwise, and
//! `rename`.

use crate::engine::Engine;
use crate::error::{Error, Result};

/// `rename`: the container takes `new_name` and gives its old one back; the DNS of its networks
/// answers to the new name. A rename that fails leaves both names as they were.
pub fn rename(engine: &Engine, key: &str, new_name: &str) -> Result<()> {
    validate(new_name)?;
    let containers = &engine.containers;
    let _names = containers.lock_names()?;
    let record = containers.find(key)?;
    if record.name == new_name {
        return Err(Error::Invalid(format!(
            "container {key} is already named {new_name:?}: give a different name"
        )));
    }
    if let Some(other) = containers.reserve_name(new_name, &record.id)? {
        return Err(Error::Invalid(format!(
            "the name {new_name:?} is already in use by container {other}: pick another"
        )));
    }
    if let Err(e) = containers.update(&record.id, |r| r.name = new_name.to_string()) {
        containers.release_name(new_name, &record.id);
        return Err(e);
    }
    containers.release_name(&record.name, &record.id);
    let renamed = crate::records::Record {
        name: new_name.to_string(),
        ..record.clone()
    };
    let event = crate::events::Event::container(&renamed, "rename");
    crate::events::record(engine, event.with("oldName", format!("/{}", record.name)));
    crate::network::rename(engine, &record.id, new_name)
}

const ADJECTIVES: &[&str] = &[
    "admiring", "agitated", "amazing", "bold", "brave", "busy", "clever", "cool", "dazzling",
    "eager", "elegant", "epic", "festive", "focused", "gallant", "happy", "hopeful", "jolly",
    "keen", "kind", "loving", "lucid", "modest", "nifty", "peaceful", "quirky", "relaxed",
    "serene", "sharp", "stoic", "tender", "vibrant", "wizardly", "zealous",
];

const NAMES: &[&str] = &[
    "albattani",
    "babbage",
    "bohr",
    "curie",
    "darwin",
    "einstein",
    "euclid",
    "fermi",
    "galileo",
    "hopper",
    "hypatia",
    "kepler",
    "lamport",
    "lovelace",
    "mccarthy",
    "meitner",
    "newton",
    "noether",
    "pasteur",
    "ritchie",
    "shannon",
    "thompson",
    "torvalds",
    "turing",
    "wozniak",
];

/// The longest name: each is a file name in the name index (NAME_MAX).
const MAX_NAME: usize = 255;

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at most 255 characters.
pub fn validate(name: &str) -> Result<()> {
    if name.len() > MAX_NAME {
        let start: String = name.chars().take(20).collect();
        return Err(Error::Invalid(format!(
            "invalid container name \"{start}...\": {} characters, more than the {MAX_NAME} allowed",
            name.chars().count()
        )));
    }
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A generated name from two random bytes of the id's entropy, suffixed until free.
pub fn generate(random: &[u8], taken: impl Fn(&str) -> bool) -> String {
    let a = ADJECTIVES[usize::from(random[0]) % ADJECTIVES.len()];
    let n = NAMES[usize::from(random[1]) % NAMES.len()];
    let base = format!("{a}_{n}");
    if !taken(&base) {
        return base;
    }
    (1..)
        .map(|i| format!("{base}{i}"))
        .find(|c| !taken(c))
        .unwrap_or(base)
}

/// A new 64-hex container id.
pub fn new_id() -> Result<(String, [u8; 32])> {
    let mut bytes = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom").map_err(Error::io("open", "/dev/urandom"))?;
    std::io::Read::read_exact(&mut f, &mut bytes).map_err(Error::io("read", "/dev/urandom"))?;
    let id = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok((id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate("web-1.a_b").is_ok());
        for bad in ["", "a", "-x", "a b", "a/b", "é1"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let n = generate(&[0, 0], |n| n == "admiring_albattani");
        assert_eq!(n, "admiring_albattani1");
    }
}
