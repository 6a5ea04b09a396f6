//! ortl-split's command line: its help text is the spec of the binary, and
//! [`crate::Settings::resolve`] turns what was given into the settings of a run.

use std::path::PathBuf;

use clap::Parser;
use ortl_imaging::DecodeLimits;
use ortl_imaging::files::DEFAULT_EXTENSIONS;

use crate::Verify;
use crate::table::Uncertain;

/// Lists the images of a data set and assigns each to a split.
///
/// DATA_DIR holds one sub-folder per class, as Keras'
/// image_dataset_from_directory reads it. Or --labels names a label table (CSV,
/// or TSV when named .tsv): one row per image with its path (relative to
/// --images) and its label; rows without a label, or whose image is missing, are
/// reported and left out (fatal with --strict). Class names are sorted and a
/// class's label is its index in that order. Every image is decoded once (in
/// parallel) so that corrupt files are caught now: each is reported on stderr and
/// left out (or fatal with --strict). Per-class counts per split go to stderr.
///
/// Multi-label tables: --label-separator '|' for findings joined in one column
/// (NIH ChestX-ray14), --label-columns A,B,… for one column per finding (CheXpert:
/// 1, 0, -1 uncertain by --uncertain, blank unknown). They give a multi-label
/// manifest (path,split,y_<finding>…: 1, 0 or empty for unknown), split so that
/// every finding's positives are spread over the splits in proportion; ortl-augment
/// and the stages after it train and evaluate a sigmoid per finding.
///
/// --group-by COLUMN splits by group (the patient): every image of a group lands
/// in one split or fold, stratified by class (or finding) as far as the groups
/// allow, so no patient's other radiographs leak into validation. Without a patient
/// column: --group-by-path REGEX (from each path) or --group-by-tag PatientID
/// (from each DICOM file), in either layout.
///
/// Output: manifest.csv with columns path,label,class,split (and group, when
/// grouped). Paths are written relative to the manifest's folder (to the working
/// directory with -o -). The same seed and files give a byte-identical manifest.
///
/// EXAMPLES:
///     ortl-split data/xray -o work/manifest.csv
///     ortl-split data/xray --val 0.2 --test 0.1 --seed 12 -o manifest.csv
///     ortl-split data/xray --folds 5 -o - | cut -d, -f3,4 | sort | uniq -c
///     ortl-split --labels labels.csv --images images --label-column Finding \
///         --group-by 'Patient ID' --folds 5 -o manifest.csv
///     ortl-split --labels Data_Entry_2017.csv --images nih --label-separator '|' \
///         --group-by 'Patient ID' -o manifest.csv
///     ortl-split --labels CheXpert-v1.0-small/train.csv --images . --path-column Path \
///         --label-columns 'Cardiomegaly,Pleural Effusion' --uncertain zeros \
///         --group-by-path 'patient[0-9]+' -o manifest.csv
///     ortl-split dicom-export --group-by-tag PatientID --folds 5 -o manifest.csv
///     ortl-split --labels stage_2_train_labels.csv --images stage_2_train_images \
///         --path-column patientId --path-suffix .dcm --label-column Target \
///         --group-by patientId -o manifest.csv
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
pub struct Args {
    /// Folder with one sub-folder of images per class.
    // Not `conflicts_with = "labels"`: clap then skips every `requires = "labels"` (checked
    // in `Settings::resolve` instead).
    #[arg(required_unless_present = "labels")]
    pub data_dir: Option<PathBuf>,
    /// A label table instead of class folders: one row per image.
    #[arg(long, value_name = "TABLE")]
    pub labels: Option<PathBuf>,
    /// Where the table's paths are relative to; a bare file name not found there is
    /// looked up in its sub-folders. [default: the table's folder]
    #[arg(long, value_name = "DIR", requires = "labels")]
    pub images: Option<PathBuf>,
    /// The table's image path column. [default: the first of path, image, image_path,
    /// filename, file, Image Index]
    #[arg(long, value_name = "NAME", requires = "labels")]
    pub path_column: Option<String>,
    /// The table's label column. [default: the first of label, class, target; with
    /// --label-separator: Finding Labels, findings, labels, label]
    #[arg(long, value_name = "NAME", requires = "labels")]
    pub label_column: Option<String>,
    /// Multi-label, one column per finding (CheXpert, MIMIC-CXR-JPG): 1 present, 0 absent,
    /// -1 uncertain (see --uncertain), blank not mentioned (unknown: masked, not negative).
    #[arg(
        long,
        value_name = "A,B,…",
        value_delimiter = ',',
        requires = "labels",
        conflicts_with_all = ["label_column", "label_separator"]
    )]
    pub label_columns: Vec<String>,
    /// Multi-label, the findings joined in the label column by SEP (NIH: '|'); the
    /// findings are every name met but --no-finding's.
    #[arg(long, value_name = "SEP", requires = "labels")]
    pub label_separator: Option<String>,
    /// With --label-separator: the word for no finding (any case). [default: No Finding]
    #[arg(long, value_name = "NAME")]
    pub no_finding: Option<String>,
    /// With --label-columns: what an uncertain mention (-1) becomes: ignore (unknown,
    /// masked out), zeros (absent) or ones (present): the CheXpert paper's policies.
    /// [default: ignore]
    #[arg(long, value_enum)]
    pub uncertain: Option<Uncertain>,
    /// Appended to every table path (RSNA lists patientIds whose files are ID.dcm: .dcm).
    #[arg(long, value_name = "SUFFIX", requires = "labels")]
    pub path_suffix: Option<String>,
    /// Split by group: the table column naming each image's group (e.g. 'Patient ID');
    /// a row without one is a group of its own.
    #[arg(long, value_name = "COLUMN", requires = "labels")]
    pub group_by: Option<String>,
    /// Split by group, the group read from each image's path (relative to DATA_DIR or
    /// --images) by a regular expression: its first capture group, else its whole match
    /// (CheXpert: 'patient[0-9]+'; files named PATIENT_VIEW.png in any folder:
    /// '([^/]+)_[^/]*$'). An image whose path does not match is a group of its own.
    #[arg(long, value_name = "REGEX", conflicts_with = "group_by")]
    pub group_by_path: Option<String>,
    /// Split by group, the group read from each DICOM file's attribute (PatientID,
    /// StudyInstanceUID, …). A file without it (or not DICOM) is a group of its own.
    #[arg(long, value_name = "KEYWORD", conflicts_with_all = ["group_by", "group_by_path"])]
    pub group_by_tag: Option<String>,
    /// Output manifest (`-` for stdout).
    #[arg(short, long, default_value = "-")]
    pub output: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Fraction of each class for validation.
    #[arg(long, default_value_t = 0.2)]
    pub val: f64,
    /// Fraction of each class held out for testing.
    #[arg(long, default_value_t = 0.0)]
    pub test: f64,
    /// Seed of the shuffle (the tutorial uses 12).
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
    /// Shuffle all images together instead of per class.
    #[arg(long)]
    pub no_stratify: bool,
    /// K-fold cross-validation: the split column holds the fold number 0..K-1 (after
    /// holding out --test); --val is not used.
    #[arg(long, value_name = "K")]
    pub folds: Option<u32>,
    /// Image extensions to include, comma-separated, case-insensitive.
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_EXTENSIONS.map(String::from))]
    pub ext: Vec<String>,
    /// How much of each file to read to check it.
    #[arg(long, value_enum, default_value_t = Verify::Full)]
    pub verify: Verify,
    /// Fail (exit 1) on the first unreadable image (or unusable table row) instead of
    /// leaving it out.
    #[arg(long)]
    pub strict: bool,
    /// Largest image accepted, in pixels (width × height).
    #[arg(long, default_value_t = DecodeLimits::DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
    /// Worker threads for decoding (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}
