//! Where each built-in family's ImageNet weights come from (`--weights imagenet`), kept as
//! data: `data/imagenet.csv` pins each to a hub repository, revision, file and SHA-256 where a
//! public page gives them (`hash_source` says which), and says what the weights expect that
//! the built-in network does not already do: the input normalisation (Inception's weights
//! take [−1, 1]) and, for timm's own layouts, a rename map to torchvision's names (`data/rename/*.tsv`, written by
//! `scripts/record-imagenet-names.py` from the two libraries).

use std::sync::LazyLock;

use serde::Deserialize;

use crate::weights::{WeightsError, load_safetensors_renamed};
use crate::{Backbone, Normalization};

/// One family's ImageNet weights.
#[derive(Clone, Debug, Deserialize)]
pub struct Source {
    pub backbone: String,
    pub repo: String,
    /// A commit; empty: the repository's default branch, resolved on download.
    pub revision: Option<String>,
    pub file: String,
    /// Empty where no public page gives it: recorded on first download instead.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub normalization: Normalization,
    /// A file of `data/rename/`, for weights not in torchvision's names.
    #[serde(rename = "rename")]
    pub rename_map: Option<String>,
    /// What the weights are, in words.
    pub weights: String,
    /// Where the pinned hash was read.
    pub hash_source: Option<String>,
}

const TABLE: &str = include_str!("../data/imagenet.csv");

/// Every family's ImageNet source, in the table's order.
pub static IMAGENET: LazyLock<Vec<Source>> = LazyLock::new(|| {
    csv::Reader::from_reader(TABLE.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .expect("data/imagenet.csv parses (tested)")
});

/// The built-in backbones ortl has ImageNet weights for, for messages.
pub fn imagenet_backbones() -> String {
    IMAGENET
        .iter()
        .map(|s| s.backbone.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ImageNet source of built-in backbone `name`.
pub fn imagenet(name: &str) -> Option<&'static Source> {
    IMAGENET.iter().find(|s| s.backbone == name)
}

impl Source {
    /// Loads this source's file (downloaded to `path`) into `backbone`, with what the
    /// weights expect: names renamed, input normalisation as trained.
    pub fn load(
        &self,
        backbone: &mut Backbone,
        path: &std::path::Path,
    ) -> Result<(), WeightsError> {
        load_safetensors_renamed(backbone, path, self.rename().as_ref())?;
        backbone.normalization = self.normalization;
        backbone.normalization_reason = format!("what {}'s weights were trained with", self.repo);
        Ok(())
    }

    /// The rename map this source's names need, if any.
    pub fn rename(&self) -> Option<Rename> {
        self.rename_map.as_deref().map(|name| {
            Rename::named(name).unwrap_or_else(|| panic!("data/rename/{name}.tsv (tested)"))
        })
    }
}

/// Which built-in backbones are timm's layout of a family with a rename map: any file in
/// that layout (`--weights hf:…` of another timm tag of the family) is renamed too.
const FAMILY_RENAMES: &[(&str, &str)] = &[
    ("mobilenet_v2", "mobilenetv2_100"),
    ("mobilenet-mini", "mobilenetv2_100"),
    ("efficientnet_b0", "efficientnet_b0"),
    ("efficientnet-mini", "efficientnet_b0"),
];

/// The rename map from timm's layout for built-in `backbone`, if its family has one.
pub fn rename_for(backbone: &str) -> Option<Rename> {
    FAMILY_RENAMES
        .iter()
        .find(|(b, _)| *b == backbone)
        .and_then(|(_, map)| Rename::named(map))
}

/// The rename maps in `data/rename/`, by name.
const RENAMES: &[(&str, &str)] = &[
    (
        "mobilenetv2_100",
        include_str!("../data/rename/mobilenetv2_100.tsv"),
    ),
    (
        "efficientnet_b0",
        include_str!("../data/rename/efficientnet_b0.tsv"),
    ),
];

/// Module prefixes of one layout mapped to another's: `blocks.1.0.conv_pw` →
/// `features.2.conv.0.0` renames `blocks.1.0.conv_pw.weight` to `features.2.conv.0.0.weight`.
#[derive(Clone, Debug, Default)]
pub struct Rename {
    pairs: Vec<(String, String)>,
}

impl Rename {
    pub fn named(name: &str) -> Option<Rename> {
        RENAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Rename::parse(text))
    }

    /// Lines `FROM<TAB>TO`; `#` starts a comment line.
    pub fn parse(text: &str) -> Rename {
        let pairs = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(from, to)| (from.trim().to_string(), to.trim().to_string()))
            .collect();
        Rename { pairs }
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The tensor `name` in the target layout: its longest mapped module prefix replaced;
    /// unchanged when no prefix maps.
    pub fn apply(&self, name: &str) -> String {
        self.pairs
            .iter()
            .filter(|(from, _)| {
                name.strip_prefix(from.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            })
            .max_by_key(|(from, _)| from.len())
            .map_or_else(
                || name.to_string(),
                |(from, to)| format!("{to}{}", &name[from.len()..]),
            )
    }

    /// Whether `name` is in the source layout (some prefix maps it).
    pub fn maps(&self, name: &str) -> bool {
        self.apply(name) != name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_names_built_in_backbones_with_well_formed_pins() {
        assert!(IMAGENET.len() >= 9);
        for s in IMAGENET.iter() {
            assert!(
                crate::zoo::builtin(&s.backbone, 0).is_some(),
                "{} is not built in",
                s.backbone
            );
            assert!(s.repo.split('/').count() == 2, "{}", s.repo);
            if let Some(sha) = &s.sha256 {
                assert!(
                    sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}: {sha}",
                    s.backbone
                );
                assert!(
                    s.hash_source.is_some(),
                    "{}: pinned without a source",
                    s.backbone
                );
            }
            if let Some(revision) = &s.revision {
                assert!(
                    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}: {revision}",
                    s.backbone
                );
            }
            let _ = s.rename();
        }
        let names: std::collections::HashSet<_> = IMAGENET.iter().map(|s| &s.backbone).collect();
        assert_eq!(names.len(), IMAGENET.len(), "a backbone twice");
    }

    #[test]
    fn renames_take_the_longest_prefix_at_a_module_boundary() {
        let rename = Rename::parse("# header\nblocks.1\tfeatures.2\nblocks.1.0\tfeatures.3.conv\n");
        assert_eq!(rename.len(), 2);
        assert_eq!(rename.apply("blocks.1.0.weight"), "features.3.conv.weight");
        assert_eq!(rename.apply("blocks.1.weight"), "features.2.weight");
        // blocks.10 is not under blocks.1.
        assert_eq!(rename.apply("blocks.10.weight"), "blocks.10.weight");
        assert!(!rename.maps("fc.weight"));
    }
}
