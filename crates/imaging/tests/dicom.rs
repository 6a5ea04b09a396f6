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
