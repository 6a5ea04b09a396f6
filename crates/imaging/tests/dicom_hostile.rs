//! Hostile DICOM (issue #37): corrupt element lengths are refused from the bytes that
//! remain, before dicom-object reserves and zero-fills what they claim; and the DICOM path
//! under the project's mutation fuzzer (`ortl_fixtures::fuzz`; `make fuzz` runs it long).

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ortl_fixtures::dicom;
use ortl_fixtures::fuzz;
use ortl_imaging::{DecodeLimits, DecodeOptions, Window, decode, probe};
use proptest::prelude::*;

/// A 2×3 12-bit file of 532 bytes (preamble, meta group, data set).
fn small_file(path: &Path) -> Vec<u8> {
    let form = dicom::small();
    dicom::write(path, &form, "2.25.9").unwrap();
    std::fs::read(path).unwrap()
}

fn options() -> DecodeOptions {
    DecodeOptions {
        limits: DecodeLimits::default(),
        window: Window::Auto,
    }
}

#[test]
fn a_length_past_the_end_is_refused_naming_the_element() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.dcm");
    let mut bytes = small_file(&path);
    // Rows (0028,0010) US, explicit VR: tag, "US", 2-byte length; made 0xFFFF.
    let rows = bytes
        .windows(6)
        .position(|w| w == b"\x28\x00\x10\x00US")
        .unwrap();
    bytes[rows + 6..rows + 8].copy_from_slice(&[0xFF, 0xFF]);
    let remaining = bytes.len() - (rows + 8);
    std::fs::write(&path, &bytes).unwrap();
    let expected = format!(
        "element (0028,0010) claims 65535 bytes but only {remaining} remain; the file is truncated or corrupt"
    );
    for err in [
        probe(&path, DecodeLimits::default()).unwrap_err(),
        decode(&path, options()).unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(
            message.contains("long.dcm") && message.contains(&expected),
            "{message}"
        );
    }
}

/// Every single-byte 0xFF or 0x00 of a small file is read or refused, never a panic, and
/// quickly: before lengths were checked, 0xFF in a length field made the parser zero-fill
/// up to 4 GiB, about 100 s over such a run.
#[test]
fn every_byte_set_to_0xff_or_0x00_is_read_or_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let seed = small_file(&dir.path().join("seed.dcm"));
    let variants = 2 * seed.len();
    let (sender, receiver) = mpsc::channel();
    let folder = dir.path().to_path_buf();
    let start = Instant::now();
    // In a thread so that a hang fails the test at the deadline instead of blocking it.
    std::thread::spawn(move || {
        let path = folder.join("mutant.dcm");
        for at in 0..seed.len() {
            for value in [0xFF, 0x00] {
                let mut bytes = seed.clone();
                bytes[at] = value;
                std::fs::write(&path, &bytes).unwrap();
                let outcome = std::panic::catch_unwind(|| {
                    let _ = probe(&path, DecodeLimits::default());
                    let _ = decode(&path, options());
                });
                if outcome.is_err() {
                    sender
                        .send(Err(format!("byte {at} set to {value:#04x} panics")))
                        .unwrap();
                    return;
                }
            }
        }
        sender.send(Ok(())).unwrap();
    });
    let outcome = receiver
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{variants} variants took over 20 s: a length is not bounded"));
    outcome.unwrap();
    eprintln!("{variants} variants in {:?}", start.elapsed());
}

proptest! {
    #![proptest_config(fuzz::config())]

    /// Mutated files, whole, without their preamble and as a bare implicit-VR data set, are
    /// read or refused: never a panic.
    #[test]
    fn the_dicom_reader_never_panics(form in 0usize..3, mutations in fuzz::mutations()) {
        use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.dcm");
        let whole = small_file(&path);
        let seed = match form {
            0 => whole,
            1 => whole[128..].to_vec(),
            _ => {
                let mut data_set = Vec::new();
                dicom_object::open_file(&path)
                    .unwrap()
                    .into_inner()
                    .write_dataset_with_ts(&mut data_set, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
                    .unwrap();
                data_set
            }
        };
        std::fs::write(&path, fuzz::mutate(&seed, &mutations)).unwrap();
        let _ = probe(&path, DecodeLimits::default());
        let _ = decode(&path, options());
    }
}
