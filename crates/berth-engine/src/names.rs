//! Container names: Docker's rule for given names and a generated `adjective_name` otherwise.

use crate::error::{Error, Result};

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

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<()> {
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
