//! DICOM decoding against the PNG it was made from: the fixture generator stores an 8-bit
//! image in each of the forms hospitals export, with a window that maps it back exactly.

use ortl_fixtures::dicom::{self, DicomImage, Encoding};
use ortl_fixtures::{Finding, chest_xray};
use ortl_imaging::{DecodeError, DecodeLimits, DecodeOptions, Pixels, Window, decode, probe};

fn options(window: Window) -> DecodeOptions {
    DecodeOptions {
        limits: DecodeLimits::default(),
        window,
    }
}

#[test]
fn every_fixture_form_decodes_to_the_png_pixels_with_the_files_window() {
    let dir = tempfile::tempdir().unwrap();
    for index in 0..4 * dicom::VARIANTS {
        let finding = [Finding::Normal, Finding::Tuberculosis][index % 2];
        let image = chest_xray(finding, index as u32, 2026);
        let form = dicom::variant(&image, index);
        // No extension: DICOM is recognised by its content.
        let path = dir.path().join(format!("IM{index:04}"));
        dicom::write(&path, &form, "2.25.9").unwrap();
        assert_eq!(
            probe(&path, DecodeLimits::default()).unwrap(),
            image.dimensions()
        );
        let decoded = decode(&path, options(Window::Auto)).unwrap();
        let Pixels::Grey(grey) = &decoded.pixels else {
            panic!("form {index}: grey DICOM should stay one channel");
        };
        let differ: Vec<(u8, u8)> = grey
            .as_raw()
            .iter()
            .zip(image.as_raw())
            .filter(|(a, b)| a != b)
            .map(|(&a, &b)| (a, b))
            .take(5)
            .collect();
        assert!(
            differ.is_empty() && grey.dimensions() == image.dimensions(),
            "form {index} ({:?}, {} bits): decoded/expected {differ:?}",
            form.encoding,
            form.bits_stored
        );
        let intensity = decoded.intensity.expect("DICOM decoding is recorded");
        let photometric = if form.monochrome1 {
            "MONOCHROME1"
        } else {
            "MONOCHROME2"
        };
        assert!(
            intensity.kind.starts_with(&format!("DICOM {photometric}")),
            "{intensity:?}"
        );
        assert!(
            intensity.kind.contains("window from the file"),
            "{intensity:?}"
        );
        assert_eq!(
            form.monochrome1,
            intensity.kind.contains("inverted"),
            "{intensity:?}"
        );
        assert_eq!(
            form.rescale.is_some(),
            intensity.kind.contains("rescaled"),
            "{intensity:?}"
        );
        // The kind carries no per-file numbers, so files can be counted by it.
        assert!(!intensity.kind.contains("1024"), "{intensity:?}");
        if form.encoding == Encoding::RleLossless {
            assert!(intensity.detail.contains("RLE Lossless"), "{intensity:?}");
        }
    }
}

#[test]
fn min_max_and_fixed_windows_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let image = chest_xray(Finding::Normal, 1, 7);
    let path = dir.path().join("a.dcm");
    // Form 0: stored 16·v, rescaled 16·v − 1024.
    dicom::write(&path, &dicom::variant(&image, 0), "2.25.9").unwrap();
    let (low, high) = image
        .as_raw()
        .iter()
        .fold((255u8, 0u8), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let stretched = decode(&path, options(Window::MinMax)).unwrap();
    let raw = stretched.pixels.as_raw();
    assert_eq!(raw.iter().min(), Some(&0));
    assert_eq!(raw.iter().max(), Some(&255));
    let at_low = image.as_raw().iter().position(|&v| v == low).unwrap();
    let at_high = image.as_raw().iter().position(|&v| v == high).unwrap();
    assert_eq!((raw[at_low], raw[at_high]), (0, 255));
    assert!(stretched.intensity.unwrap().kind.contains("min-max"));

    // A window in rescaled units: everything at or below 16·100 − 1024 is black.
    let fixed = Window::Fixed {
        center: 16.0 * 100.0 - 1024.0 + 500.0,
        width: 1001.0,
    };
    let windowed = decode(&path, options(fixed)).unwrap();
    for (&v, &out) in image.as_raw().iter().zip(windowed.pixels.as_raw()) {
        if v <= 100 {
            assert_eq!(out, 0, "stored {v}");
        } else if u16::from(v) > 100 + 1000 / 16 {
            assert_eq!(out, 255, "stored {v}");
        }
    }
    assert!(
        windowed
            .intensity
            .unwrap()
            .kind
            .contains(&format!("window {fixed}"))
    );
}

#[test]
fn an_undecodable_transfer_syntax_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ls.dcm");
    let image = chest_xray(Finding::Normal, 0, 1);
    let stub = DicomImage {
        encoding: Encoding::JpegLsStub,
        ..dicom::variant(&image, 0)
    };
    dicom::write(&path, &stub, "2.25.9").unwrap();
    for err in [
        probe(&path, DecodeLimits::default()).unwrap_err(),
        decode(&path, options(Window::Auto)).unwrap_err(),
    ] {
        let message = err.to_string();
        assert!(matches!(err, DecodeError::Format { .. }));
        assert!(
            message.contains("ls.dcm")
                && message.contains("JPEG-LS")
                && message.contains("gdcmconv"),
            "{message}"
        );
    }
}

#[test]
fn the_pixel_limit_applies_to_dicom_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.dcm");
    let image = chest_xray(Finding::Normal, 0, 1);
    dicom::write(&path, &dicom::variant(&image, 1), "2.25.9").unwrap();
    let limits = DecodeLimits { max_pixels: 100 };
    assert!(matches!(
        probe(&path, limits).unwrap_err(),
        DecodeError::TooLarge { .. }
    ));
    let err = decode(
        &path,
        DecodeOptions {
            limits,
            window: Window::Auto,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--max-pixels"), "{err}");
}

/// JPEG Baseline, the compressed form most common in exports, decodes through dicom-rs's
/// JPEG decoder to (lossy) the same picture.
#[test]
fn jpeg_baseline_dicom_decodes_to_the_picture() {
    use dicom_pixeldata::Transcode;
    use dicom_transfer_syntax_registry::entries::JPEG_BASELINE;
    let dir = tempfile::tempdir().unwrap();
    let image = chest_xray(Finding::Tuberculosis, 1, 2026);
    // Form 2: 8-bit MONOCHROME2 with a window that gives the stored values back.
    let form = DicomImage {
        encoding: Encoding::ExplicitLittle,
        ..dicom::variant(&image, 2)
    };
    let plain = dir.path().join("plain.dcm");
    dicom::write(&plain, &form, "2.25.9").unwrap();
    let mut object = dicom_object::open_file(&plain).unwrap();
    object.transcode(&JPEG_BASELINE.erased()).unwrap();
    let jpeg = dir.path().join("jpeg.dcm");
    object.write_to_file(&jpeg).unwrap();
    let decoded = decode(&jpeg, options(Window::Auto)).unwrap();
    let intensity = decoded.intensity.unwrap();
    assert!(intensity.detail.contains("JPEG Baseline"), "{intensity:?}");
    let raw = decoded.pixels.as_raw();
    assert_eq!(raw.len(), image.as_raw().len());
    let mean_error = raw
        .iter()
        .zip(image.as_raw())
        .map(|(&a, &b)| f64::from(a.abs_diff(b)))
        .sum::<f64>()
        / raw.len() as f64;
    assert!(mean_error < 3.0, "mean absolute error {mean_error}");
}

/// A multi-frame file gives its first frame, and says so.
#[test]
fn a_multi_frame_file_gives_its_first_frame() {
    use dicom_core::value::PrimitiveValue;
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    let dir = tempfile::tempdir().unwrap();
    let image = chest_xray(Finding::Normal, 2, 2026);
    let form = dicom::variant(&image, 0);
    let single = dir.path().join("one.dcm");
    dicom::write(&single, &form, "2.25.9").unwrap();
    let mut object = dicom_object::open_file(&single).unwrap();
    // A second frame of other values after the first.
    let mut samples = form.stored.clone();
    samples.extend(form.stored.iter().map(|v| 4080 - v));
    object.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::U16(samples.into()),
    ));
    object.put(DataElement::new(
        tags::NUMBER_OF_FRAMES,
        VR::IS,
        PrimitiveValue::from("2"),
    ));
    let multi = dir.path().join("two.dcm");
    object.write_to_file(&multi).unwrap();
    let decoded = decode(&multi, options(Window::Auto)).unwrap();
    assert_eq!(decoded.pixels.as_raw(), image.as_raw());
    let intensity = decoded.intensity.unwrap();
    assert!(intensity.kind.contains("first frame"), "{intensity:?}");
    assert!(intensity.detail.contains("frame 1 of 2"), "{intensity:?}");
}

mod stored_values {
    //! Grey pixels from the stored integers up (issue #37): each file is a single row of
    //! hand-picked stored values, and each expected 8-bit value is worked out from the
    //! standard's equation in the comment beside it.

    use std::path::{Path, PathBuf};

    use dicom_core::value::{DataSetSequence, PrimitiveValue};
    use dicom_core::{DataElement, VR};
    use dicom_dictionary_std::tags;
    use dicom_object::InMemDicomObject;
    use ortl_fixtures::dicom::{self, DicomImage, Encoding};
    use ortl_imaging::{Decoded, Window, decode};

    use super::options;

    /// A one-row MONOCHROME2 file of `stored` (two's complement bit patterns when `signed`)
    /// with 16 of 16 bits, no rescale or window unless `edit` adds them.
    fn file(
        dir: &Path,
        stored: &[i32],
        signed: bool,
        edit: impl FnOnce(&mut DicomImage),
        extra: Vec<DataElement<InMemDicomObject>>,
    ) -> PathBuf {
        let mut form = DicomImage {
            rows: 1,
            columns: stored.len() as u16,
            stored: stored.iter().map(|&v| v as u16).collect(),
            bits_stored: 16,
            monochrome1: false,
            rescale: None,
            window: None,
            encoding: Encoding::ExplicitLittle,
        };
        edit(&mut form);
        let path = dir.join(format!("f{}.dcm", std::fs::read_dir(dir).unwrap().count()));
        dicom::write(&path, &form, "2.25.37").unwrap();
        let mut object = dicom_object::open_file(&path).unwrap();
        let representation = u16::from(signed);
        object.put(DataElement::new(
            tags::PIXEL_REPRESENTATION,
            VR::US,
            PrimitiveValue::from(representation),
        ));
        for element in extra {
            object.put(element);
        }
        object.write_to_file(&path).unwrap();
        path
    }

    fn read(path: &Path, window: Window) -> (Vec<u8>, String, String) {
        let Decoded { pixels, intensity } = decode(path, options(window)).unwrap();
        let intensity = intensity.unwrap();
        (pixels.as_raw().to_vec(), intensity.kind, intensity.detail)
    }

    fn padding_value(value: i16) -> DataElement<InMemDicomObject> {
        DataElement::new(
            tags::PIXEL_PADDING_VALUE,
            VR::SS,
            PrimitiveValue::from(value),
        )
    }

    #[test]
    fn signed_ct_padded_with_minus_2000_stretches_over_its_real_values() {
        let dir = tempfile::tempdir().unwrap();
        let stored = [-2000, -1000, 0, 1000, 3000];
        // min-max over −1000..3000, padding left out: y = (x + 1000) / 4000 · 255, clamped:
        // −2000 → 0, 0 → 63.75, 1000 → 127.5, 3000 → 255.
        let padded = file(
            dir.path(),
            &stored,
            true,
            |_| {},
            vec![padding_value(-2000)],
        );
        for window in [Window::MinMax, Window::Auto] {
            let (out, kind, detail) = read(&padded, window);
            assert_eq!(out, [0, 0, 64, 128, 255], "{window}");
            assert!(kind.contains("min-max"), "{kind}");
            assert!(
                detail.contains("-1000 to 3000, padding value -2000 ignored")
                    && detail.contains("16 of 16 bits signed"),
                "{detail}"
            );
        }
        assert!(
            read(&padded, Window::Auto)
                .1
                .contains("(no window in the file)")
        );
        // Without a padding value, −2000 is the minimum: −1000 → 1000 / 5000 · 255 = 51.
        let bare = file(dir.path(), &stored, true, |_| {}, vec![]);
        assert_eq!(read(&bare, Window::MinMax).0, [0, 51, 102, 153, 255]);
    }

    #[test]
    fn a_padding_range_is_left_out_of_min_max() {
        let dir = tempfile::tempdir().unwrap();
        // Padding −2000 up to −1000 (the limit written as US, its two's complement 64536).
        let limit = DataElement::new(
            tags::PIXEL_PADDING_RANGE_LIMIT,
            VR::US,
            PrimitiveValue::from(64536u16),
        );
        let path = file(
            dir.path(),
            &[-2000, -1000, -999, -989, -979],
            true,
            |_| {},
            vec![padding_value(-2000), limit],
        );
        // Range −999..−979: −989 → 10 / 20 · 255 = 127.5 (with −1000 it would be 133.6).
        let (out, _, detail) = read(&path, Window::MinMax);
        assert_eq!(out, [0, 0, 0, 128, 255]);
        assert!(
            detail.contains("padding values -2000 to -1000 ignored"),
            "{detail}"
        );
    }

    #[test]
    fn stored_bits_are_masked_at_the_high_bit_and_sign_extended() {
        let dir = tempfile::tempdir().unwrap();
        // 12 bits stored in 16, with junk in the 4 bits above: 0xAF9C holds 0xF9C = −100,
        // 0x5064 holds 100, 0xF000 holds 0.
        let path = file(
            dir.path(),
            &[0xAF9C, 0x5064, 0xF000],
            true,
            |f| f.bits_stored = 12,
            vec![],
        );
        // min-max over −100..100: 0 → 100 / 200 · 255 = 127.5.
        let (out, _, detail) = read(&path, Window::MinMax);
        assert_eq!(out, [0, 255, 128]);
        assert!(detail.contains("12 of 16 bits signed"), "{detail}");
    }

    #[test]
    fn rescale_slope_and_intercept_come_before_the_window() {
        let dir = tempfile::tempdir().unwrap();
        // x = 2·stored − 100: −100, 0, 100, 200.
        let path = file(
            dir.path(),
            &[0, 50, 100, 150],
            false,
            |f| f.rescale = Some((2.0, -100.0)),
            vec![],
        );
        // LINEAR, c = 0, w = 401: y = ((x + 0.5) / 400 + 0.5) · 255, white above 199.5:
        // −100 → 64.07, 0 → 127.82, 100 → 191.57, 200 → 255.
        let fixed = Window::Fixed {
            center: 0.0,
            width: 401.0,
        };
        let (out, kind, detail) = read(&path, fixed);
        assert_eq!(out, [64, 128, 192, 255]);
        assert!(kind.contains("rescaled"), "{kind}");
        assert!(
            detail.contains("rescale slope 2 intercept -100"),
            "{detail}"
        );
    }

    #[test]
    fn the_voi_lut_function_shapes_the_files_window() {
        let dir = tempfile::tempdir().unwrap();
        let stored = [75, 100, 107, 125];
        for (function, expected) in [
            // LINEAR (C.11.2.1.2.1), c = 100, w = 50: ((x − 99.5) / 49 + 0.5) · 255, black at
            // or below 75, white above 124: 100 → 130.10, 107 → 166.53.
            ("LINEAR", [0, 130, 167, 255]),
            // LINEAR_EXACT (C.11.2.1.3.2): ((x − 100) / 50 + 0.5) · 255, black at or below
            // 75, white above 125: 100 → 127.5, 107 → 163.2, 125 → 255.
            ("LINEAR_EXACT", [0, 128, 163, 255]),
            // SIGMOID (C.11.2.1.3.1): 255 / (1 + exp(−4 (x − 100) / 50)): 75 → 255 / (1 +
            // e²) = 30.40, 100 → 127.5, 107 → 255 / (1 + e^−0.56) = 162.29, 125 → 224.60.
            ("SIGMOID", [30, 128, 162, 225]),
        ] {
            let element = DataElement::new(
                tags::VOILUT_FUNCTION,
                VR::CS,
                PrimitiveValue::from(function),
            );
            let path = file(
                dir.path(),
                &stored,
                false,
                |f| f.window = Some((100.0, 50.0)),
                vec![element],
            );
            let (out, kind, detail) = read(&path, Window::Auto);
            assert_eq!(out, expected, "{function}");
            assert!(kind.contains("window from the file"), "{kind}");
            assert!(detail.contains(&format!("({function})")), "{detail}");
        }
    }

    fn lut_item(descriptor: [u16; 3], data: &[u16]) -> InMemDicomObject {
        InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::LUT_DESCRIPTOR,
                VR::US,
                PrimitiveValue::U16(descriptor.to_vec().into()),
            ),
            DataElement::new(
                tags::LUT_DATA,
                VR::US,
                PrimitiveValue::U16(data.to_vec().into()),
            ),
        ])
    }

    #[test]
    fn a_voi_lut_sequence_is_preferred_to_the_window_and_scaled_from_its_bits() {
        let dir = tempfile::tempdir().unwrap();
        // 4 entries of 10 bits, the first for input 1; inputs below 1 take the first entry,
        // above 4 the last; y = entry / 1023 · 255: 341 → 85.0, 682 → 170.0.
        let lut = lut_item([4, 1, 10], &[0, 341, 682, 1023]);
        let sequence = DataElement::new(
            tags::VOILUT_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![lut]),
        );
        let path = file(
            dir.path(),
            &[0, 1, 2, 3, 10],
            false,
            |f| f.window = Some((1000.0, 10.0)),
            vec![sequence],
        );
        let (out, kind, _) = read(&path, Window::Auto);
        assert_eq!(out, [0, 0, 85, 170, 255]);
        assert!(kind.contains("VOI LUT from the file"), "{kind}");
    }

    #[test]
    fn a_modality_lut_sequence_replaces_the_rescale() {
        let dir = tempfile::tempdir().unwrap();
        // Stored 0, 1, 2 map to 100, 200, 4000; 5 is past the end and takes 4000. The
        // rescale the file also gives (which would be linear) is not applied.
        let lut = lut_item([3, 0, 16], &[100, 200, 4000]);
        let sequence = DataElement::new(
            tags::MODALITY_LUT_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![lut]),
        );
        let path = file(
            dir.path(),
            &[0, 1, 2, 5],
            false,
            |f| f.rescale = Some((1.0, 1000.0)),
            vec![sequence],
        );
        // min-max over 100..4000: 200 → 100 / 3900 · 255 = 6.54.
        let (out, kind, _) = read(&path, Window::MinMax);
        assert_eq!(out, [0, 7, 255, 255]);
        assert!(kind.contains("modality LUT from the file"), "{kind}");
        assert!(!kind.contains("rescaled"), "{kind}");
    }

    #[test]
    fn monochrome1_signed_is_inverted_after_the_stretch() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            &[-100, 0, 100],
            true,
            |f| f.monochrome1 = true,
            vec![],
        );
        // min-max over −100..100 gives 0, 127.5 → 128, 255; inverted 255 − y.
        let (out, kind, _) = read(&path, Window::Auto);
        assert_eq!(out, [255, 127, 0]);
        assert!(kind.ends_with("inverted"), "{kind}");
    }
}

/// Older archives and some PACS exports drop the preamble, the `DICM` magic too, or write the
/// bare data set (implicit VR, no file meta): each reads as the Part 10 file it came from.
#[test]
fn files_without_preamble_or_file_meta_read_as_part_10_and_never_panic() {
    use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
    let dir = tempfile::tempdir().unwrap();
    let form = dicom::small();
    let full = dir.path().join("full.dcm");
    dicom::write(&full, &form, "2.25.9").unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let mut data_set = Vec::new();
    dicom_object::open_file(&full)
        .unwrap()
        .into_inner()
        .write_dataset_with_ts(&mut data_set, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    let expected = decode(&full, options(Window::Auto)).unwrap();
    for (name, stripped, said) in [
        ("magic", &bytes[128..], "no preamble"),
        ("meta", &bytes[132..], "no preamble"),
        (
            "data-set",
            &data_set[..],
            "data set without file meta (implicit VR)",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, stripped).unwrap();
        assert_eq!(probe(&path, DecodeLimits::default()).unwrap(), (3, 2));
        let decoded = decode(&path, options(Window::Auto)).unwrap();
        assert_eq!(decoded.pixels, expected.pixels, "{name}");
        let intensity = decoded.intensity.unwrap();
        assert_eq!(intensity.kind, expected.intensity.clone().unwrap().kind);
        assert!(intensity.detail.contains(said), "{name}: {intensity:?}");
        assert!(ortl_imaging::files::is_bare_dicom(&path) || stripped.len() < 132);
    }
    // Every truncation of the bare data set is read or refused, never a panic.
    let path = dir.path().join("truncated");
    for at in 0..data_set.len() {
        std::fs::write(&path, &data_set[..at]).unwrap();
        let _ = probe(&path, DecodeLimits::default());
        assert!(decode(&path, options(Window::Auto)).is_err(), "{at} bytes");
    }
}
