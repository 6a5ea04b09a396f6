//! The `split` column: `train`, `val`, `test`, or a fold number under k-fold splitting.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Val,
    Test,
    Fold(u32),
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Split::Train => f.write_str("train"),
            Split::Val => f.write_str("val"),
            Split::Test => f.write_str("test"),
            Split::Fold(k) => write!(f, "{k}"),
        }
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" => Ok(Split::Train),
            "val" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            other => other
                .parse()
                .map(Split::Fold)
                .map_err(|_| format!("split '{other}' is not train, val, test or a fold number")),
        }
    }
}

impl Serialize for Split {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Split {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown() {
        for s in [Split::Train, Split::Val, Split::Test, Split::Fold(3)] {
            assert_eq!(s.to_string().parse::<Split>().unwrap(), s);
        }
        assert!(
            "validation"
                .parse::<Split>()
                .unwrap_err()
                .contains("validation")
        );
    }
}
