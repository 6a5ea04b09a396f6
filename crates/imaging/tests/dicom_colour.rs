//! Colour DICOM (issue #37): uncompressed RGB, YBR_FULL and YBR_FULL_422 in either planar
//! configuration, and PALETTE COLOR through its lookup tables, on one-row files built here;
//! each expected value is worked out in the comment beside it.

use std::path::{Path, PathBuf};

use dicom_core::value::PrimitiveValue;
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use ortl_imaging::{DecodeLimits, DecodeOptions, Pixels, Window, decode};

/// A one-row 8-bit file of `columns` pixels with `pixel_data` as stored, uncompressed.
fn file(
    dir: &Path,
    photometric: &str,
    samples: u16,
    columns: u16,
    pixel_data: PrimitiveValue,
    extra: Vec<(Tag, VR, PrimitiveValue)>,
) -> PathBuf {
    let pixel_data = DataElement::new(tags::PIXEL_DATA, VR::OB, pixel_data);
    file_in(
        dir,
        uids::EXPLICIT_VR_LITTLE_ENDIAN,
        (photometric, samples, columns),
        pixel_data,
        extra,
    )
}

/// The same in `transfer_syntax`, with its Pixel Data element as given.
fn file_in(
    dir: &Path,
    transfer_syntax: &str,
    (photometric, samples, columns): (&str, u16, u16),
    pixel_data: DataElement<InMemDicomObject>,
    extra: Vec<(Tag, VR, PrimitiveValue)>,
) -> PathBuf {
    let mut elements = vec![
        (
            tags::SOP_CLASS_UID,
            VR::UI,
            uids::SECONDARY_CAPTURE_IMAGE_STORAGE.into(),
        ),
        (tags::SOP_INSTANCE_UID, VR::UI, "2.25.37".into()),
        (tags::SAMPLES_PER_PIXEL, VR::US, samples.into()),
        (tags::PHOTOMETRIC_INTERPRETATION, VR::CS, photometric.into()),
        (tags::ROWS, VR::US, 1u16.into()),
        (tags::COLUMNS, VR::US, columns.into()),
        (tags::BITS_ALLOCATED, VR::US, 8u16.into()),
        (tags::BITS_STORED, VR::US, 8u16.into()),
        (tags::HIGH_BIT, VR::US, 7u16.into()),
        (tags::PIXEL_REPRESENTATION, VR::US, 0u16.into()),
    ];
    elements.extend(extra);
    let object = InMemDicomObject::from_element_iter(
        elements
            .into_iter()
            .map(|(tag, vr, value)| DataElement::new(tag, vr, value))
            .chain([pixel_data]),
    );
    let path = dir.join(format!("f{}.dcm", std::fs::read_dir(dir).unwrap().count()));
    object
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(transfer_syntax)
                .media_storage_sop_class_uid(uids::SECONDARY_CAPTURE_IMAGE_STORAGE)
                .media_storage_sop_instance_uid("2.25.37"),
        )
        .unwrap()
        .write_to_file(&path)
        .unwrap();
    path
}

fn rgb(path: &Path) -> (Vec<[u8; 3]>, String) {
    let decoded = decode(
        path,
        DecodeOptions {
            limits: DecodeLimits::default(),
            window: Window::Auto,
        },
    )
    .unwrap();
    let Pixels::Rgb(image) = decoded.pixels else {
        panic!("colour DICOM should decode to RGB");
    };
    let pixels = image.pixels().map(|p| p.0).collect();
    (pixels, decoded.intensity.unwrap().detail)
}

fn planar(value: u16) -> (Tag, VR, PrimitiveValue) {
    (tags::PLANAR_CONFIGURATION, VR::US, value.into())
}

// Three YBR pixels and their RGB by PS3.3 C.7.6.3.1.2:
// R = Y + 1.402 (Cr − 128), G = Y − 0.344136 (Cb − 128) − 0.714136 (Cr − 128),
// B = Y + 1.772 (Cb − 128), rounded and clamped.
const YBR: [[u8; 3]; 3] = [
    // Pure green as YBR_FULL stores it: R = 150 − 150.01 → 0, G = 150 + 28.91 + 76.41 = 255.32
    // → 255, B = 150 − 148.85 = 1.15 → 1 (dicom-pixeldata 0.10 gave (0, 199, 5)).
    [150, 44, 21],
    // Cb = Cr = 128 is grey.
    [77, 128, 128],
    // R = 200 + 140.2 clamps to 255, G = 200 + 34.41 − 71.41 = 163, B = 200 − 177.2 = 22.8 → 23.
    [200, 28, 228],
];
const YBR_AS_RGB: [[u8; 3]; 3] = [[0, 255, 1], [77, 77, 77], [255, 163, 23]];

#[test]
fn ybr_full_follows_the_standards_equations_in_both_planar_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let interleaved: Vec<u8> = YBR.concat();
    let planes: Vec<u8> = (0..3).flat_map(|s| YBR.map(|p| p[s])).collect();
    for (bytes, configuration) in [(interleaved, 0), (planes, 1)] {
        let path = file(
            dir.path(),
            "YBR_FULL",
            3,
            3,
            PrimitiveValue::U8(bytes.into()),
            vec![planar(configuration)],
        );
        let (pixels, detail) = rgb(&path);
        assert_eq!(pixels, YBR_AS_RGB, "planar configuration {configuration}");
        assert!(
            detail.starts_with("DICOM YBR_FULL, 8 of 8 bits"),
            "{detail}"
        );
    }
}

#[test]
fn rgb_planar_configuration_1_is_read_plane_by_plane() {
    let dir = tempfile::tempdir().unwrap();
    // RRR GGG BBB.
    let bytes = vec![10, 20, 30, 40, 50, 60, 70, 80, 90];
    let path = file(
        dir.path(),
        "RGB",
        3,
        3,
        PrimitiveValue::U8(bytes.into()),
        vec![planar(1)],
    );
    assert_eq!(rgb(&path).0, [[10, 40, 70], [20, 50, 80], [30, 60, 90]]);
}

#[test]
fn uncompressed_ybr_full_422_shares_cb_cr_between_pixel_pairs() {
    let dir = tempfile::tempdir().unwrap();
    // Y1 Y2 Cb Cr per pair: (150, 77) share Cb 44, Cr 21; (200, 100) share 128, 128.
    let bytes = vec![150, 77, 44, 21, 200, 100, 128, 128];
    let path = file(
        dir.path(),
        "YBR_FULL_422",
        3,
        4,
        PrimitiveValue::U8(bytes.into()),
        vec![],
    );
    let (pixels, detail) = rgb(&path);
    // (77, 44, 21): R = 77 − 150.01 → 0, G = 77 + 28.91 + 76.41 = 182.32 → 182,
    // B = 77 − 148.85 → 0.
    assert_eq!(
        pixels,
        [[0, 255, 1], [0, 182, 0], [200, 200, 200], [100, 100, 100]]
    );
    assert!(detail.starts_with("DICOM YBR_FULL_422"), "{detail}");
}

#[test]
fn palette_color_goes_through_its_lookup_tables() {
    let dir = tempfile::tempdir().unwrap();
    let descriptor = |entries: u16, first: u16, bits: u16| {
        PrimitiveValue::U16(vec![entries, first, bits].into())
    };
    // Three entries each, the first for index 1. Red: 16 bits, kept by the high byte:
    // 0x10, 0x80, 0xFF. Green: 8 bits, a byte each (1, 2, 3, padded to even length).
    // Blue: 16 bits, 0x0100.. → 1, 2, 3.
    let extra = vec![
        (
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            VR::US,
            descriptor(3, 1, 16),
        ),
        (
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            VR::US,
            descriptor(3, 1, 8),
        ),
        (
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DESCRIPTOR,
            VR::US,
            descriptor(3, 1, 16),
        ),
        (
            tags::RED_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![0x1000, 0x8000, 0xFF00].into()),
        ),
        (
            tags::GREEN_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            VR::OW,
            PrimitiveValue::U16(
                vec![u16::from_le_bytes([1, 2]), u16::from_le_bytes([3, 0])].into(),
            ),
        ),
        (
            tags::BLUE_PALETTE_COLOR_LOOKUP_TABLE_DATA,
            VR::OW,
            PrimitiveValue::U16(vec![0x0100, 0x0200, 0x0300].into()),
        ),
    ];
    // Indices 0 (below the first mapped value: entry 0), 1, 2, then 5 and 200 (past the last
    // entry: entry 2).
    let indices = vec![0, 1, 2, 5, 200];
    let path = file(
        dir.path(),
        "PALETTE COLOR",
        1,
        5,
        PrimitiveValue::U8(indices.into()),
        extra,
    );
    let (pixels, detail) = rgb(&path);
    assert_eq!(
        pixels,
        [
            [0x10, 1, 1],
            [0x10, 1, 1],
            [0x80, 2, 2],
            [0xFF, 3, 3],
            [0xFF, 3, 3]
        ]
    );
    assert!(detail.starts_with("DICOM PALETTE COLOR"), "{detail}");
}

/// YBR_FULL compressed with RLE (as ultrasound exports it) is converted by the same
/// equations: dicom-pixeldata decodes the segments, the conversion is ours.
#[test]
fn rle_compressed_ybr_full_follows_the_standards_equations() {
    use dicom_core::value::{PixelFragmentSequence, Value};
    let dir = tempfile::tempdir().unwrap();
    let planes: Vec<Vec<u8>> = (0..3).map(|s| YBR.map(|p| p[s]).to_vec()).collect();
    let sequence = PixelFragmentSequence::new(
        Vec::<u32>::new(),
        vec![ortl_fixtures::dicom::rle_segments(&planes)],
    );
    let path = file_in(
        dir.path(),
        uids::RLE_LOSSLESS,
        ("YBR_FULL", 3, 3),
        DataElement::new(tags::PIXEL_DATA, VR::OB, Value::from(sequence)),
        vec![planar(0)],
    );
    let (pixels, detail) = rgb(&path);
    assert_eq!(pixels, YBR_AS_RGB, "{detail}");
}
