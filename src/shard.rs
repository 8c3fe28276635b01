//! Splitting a list of images among N workers with no coordinator: worker I of N
//! takes the images whose source reference hashes to I, so that every image has one
//! owner and the split does not change when the list is reordered or grows elsewhere.

use crate::error::{Error, Result};
use crate::model::digest::Digest;

/// Worker `index` of `count` (`--shard I/N`; 0 <= I < N).
///
/// ```
/// use dockhand::Shard;
///
/// let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).unwrap()).collect();
/// let images = ["docker.io/library/busybox:1", "quay.io/team/app:2", "ghcr.io/x/y:3"];
/// for image in images {
///     // Exactly one worker owns each image.
///     assert_eq!(shards.iter().filter(|s| s.owns(image)).count(), 1);
/// }
/// assert_eq!(Shard::parse("1/3")?, shards[1]);
/// assert!(Shard::parse("3/3").is_err());
/// # Ok::<(), dockhand::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

/// Most workers a list is split among.
pub const MAX_SHARDS: u64 = 1 << 20;

impl Shard {
    /// Worker `index` of `count`; an error unless `index < count <= MAX_SHARDS`.
    pub fn new(index: u64, count: u64) -> Result<Shard> {
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(Error::Usage(format!(
                "a shard is I/N with 0 <= I < N <= {MAX_SHARDS}, not {index}/{count}"
            )));
        }
        Ok(Shard { index, count })
    }

    /// `I/N` as `--shard` takes it.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::Usage(format!(
                "a shard is I/N (worker I of N, from 0), not {}",
                crate::text::shown(text)
            ))
        };
        let (index, count) = text.split_once('/').ok_or_else(bad)?;
        let index: u64 = index.trim().parse().map_err(|_| bad())?;
        let count: u64 = count.trim().parse().map_err(|_| bad())?;
        Shard::new(index, count)
    }

    /// Worker `index` of `count` where `index` comes from the environment variable
    /// `variable` (a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`).
    pub fn from_env(variable: &str, count: u64) -> Result<Shard> {
        let value = std::env::var(variable)
            .map_err(|_| Error::Usage(format!("{variable} is not set: no shard index to take")))?;
        let index: u64 = value.trim().parse().map_err(|_| {
            Error::Usage(format!(
                "{variable} is {}, not a shard index",
                crate::text::shown(&value)
            ))
        })?;
        Shard::new(index, count)
    }

    /// Whether this worker owns the image `reference` names (its source reference as
    /// written): by the first 8 bytes of its sha256, so every worker computes the same
    /// owner whatever order the list is in.
    pub fn owns(&self, reference: &str) -> bool {
        let digest = Digest::of(reference.as_bytes());
        let prefix = u64::from_str_radix(&digest.hex()[..16], 16).expect("hex digits");
        prefix % self.count == self.index
    }

    /// This worker's number, from 0.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// How many workers share the list.
    pub fn count(&self) -> u64 {
        self.count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reference_has_one_owner_and_the_split_is_even_enough() {
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        let mut per = [0usize; 4];
        for n in 0..4000 {
            let reference = format!("registry.example/team/app{n}:1");
            let owners: Vec<usize> = (0..4).filter(|&i| shards[i].owns(&reference)).collect();
            assert_eq!(owners.len(), 1, "{reference}");
            per[owners[0]] += 1;
        }
        // A hash spreads 4,000 names within a few percent of 1,000 each.
        assert!(per.iter().all(|&n| (850..=1150).contains(&n)), "{per:?}");
    }

    #[test]
    fn bad_shards_are_usage_errors() {
        for text in ["", "1", "a/2", "2/2", "0/0", "-1/2", "1/2/3"] {
            let err = Shard::parse(text).unwrap_err();
            assert!(err.is_usage(), "{text}: {err}");
        }
        assert_eq!(Shard::parse(" 0 / 1 ").unwrap(), Shard::new(0, 1).unwrap());
    }
}
