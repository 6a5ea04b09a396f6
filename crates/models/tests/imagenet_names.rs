//! Every ImageNet source in `data/imagenet.csv` fits its built-in network: a file with the
//! real checkpoint's tensor names, element types and shapes (recorded from timm by
//! `scripts/record-imagenet-names.py` in `tests/data/imagenet-names/`) loads through the
//! source's rename map, and each parameter lands where the map says, value for value.

use std::collections::HashMap;
use std::path::Path;

use ortl_models::pretrained::IMAGENET;
use safetensors::tensor::{Dtype, TensorView};

struct Recorded {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
}

fn recorded(arch: &str) -> Vec<Recorded> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/imagenet-names")
        .join(format!("{arch}.tsv"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let [name, dtype, shape] = line.split('\t').collect::<Vec<_>>()[..] else {
                panic!("{}: bad line {line}", path.display())
            };
            Recorded {
                name: name.into(),
                dtype: match dtype {
                    "float32" => Dtype::F32,
                    "int64" => Dtype::I64,
                    other => panic!("{}: dtype {other}", path.display()),
                },
                shape: shape
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| d.parse().unwrap())
                    .collect(),
            }
        })
        .collect()
}

/// A distinct value for element `i` of tensor `t`: a swapped or misplaced tensor differs.
fn value(t: usize, i: usize) -> f32 {
    (t * 1_000_003 + i) as f32 * 1e-6
}

#[test]
fn each_source_loads_the_real_checkpoint_layout_into_its_built_in_network() {
    let dir = tempfile::tempdir().unwrap();
    for source in IMAGENET.iter() {
        let arch = source
            .repo
            .strip_prefix("timm/")
            .and_then(|r| r.split('.').next())
            .expect("a timm repository");
        let tensors = recorded(arch);
        let buffers: Vec<Vec<u8>> = tensors
            .iter()
            .enumerate()
            .map(|(t, r)| {
                let numel: usize = r.shape.iter().product();
                match r.dtype {
                    Dtype::I64 => 7i64.to_le_bytes().to_vec(),
                    // Tensors the loader passes over (classifiers) are written with one
                    // element when huge (VGG's fc6 is 100M values) to keep the test's
                    // memory small; their names still go in.
                    _ if ortl_models::weights::is_ignored(&r.name) && numel > 1 << 20 => {
                        value(t, 0).to_le_bytes().to_vec()
                    }
                    _ => (0..numel).flat_map(|i| value(t, i).to_le_bytes()).collect(),
                }
            })
            .collect();
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .zip(&buffers)
            .map(|(r, bytes)| {
                let shape =
                    if bytes.len() * 8 / r.dtype.bitsize() == r.shape.iter().product::<usize>() {
                        r.shape.clone()
                    } else {
                        vec![1]
                    };
                (
                    r.name.clone(),
                    TensorView::new(r.dtype, shape, bytes).unwrap(),
                )
            })
            .collect();
        let path = dir.path().join(format!("{arch}.safetensors"));
        safetensors::serialize_to_file(views, None, &path).unwrap();

        let mut backbone = ortl_models::zoo::builtin(&source.backbone, 1).unwrap();
        source
            .load(&mut backbone, &path)
            .unwrap_or_else(|e| panic!("{}: {e}", source.backbone));
        assert_eq!(backbone.normalization, source.normalization);

        // Each float parameter of the network holds its checkpoint tensor's values.
        let rename = source.rename();
        let index: HashMap<String, usize> = tensors
            .iter()
            .enumerate()
            .map(|(t, r)| {
                let ours = rename.as_ref().map_or(r.name.clone(), |m| m.apply(&r.name));
                (ours, t)
            })
            .collect();
        let mut checked = 0;
        let mut loaded = ortl_models::backbone::parameters(&backbone.graph);
        loaded.extend(backbone.buffers());
        for name in &loaded {
            let tensor = &backbone.graph.initializers[name];
            let t = *index
                .get(name)
                .unwrap_or_else(|| panic!("{}: {name} not from the file", source.backbone));
            let values = tensor.as_f32().unwrap();
            assert!(
                values.iter().enumerate().all(|(i, v)| *v == value(t, i)),
                "{}: {name} does not hold {}",
                source.backbone,
                tensors[t].name
            );
            checked += 1;
        }
        assert!(
            checked > 10,
            "{}: {checked} tensors checked",
            source.backbone
        );
        eprintln!(
            "{}: {checked} tensors from {arch}'s layout",
            source.backbone
        );
    }
}
