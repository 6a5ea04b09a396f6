#!/usr/bin/env python3
"""Reference values for crates/imaging/tests/corpus.rs, from an independent decoder.

A dev-time tool, not run by `make test`: its output, crates/imaging/tests/data/dicom-corpus.tsv,
is committed, and the test compares ortl's decoding of pydicom's test files against it.
Re-run it only to change the file selection or the pipeline below:

    python3 -m venv /tmp/pyd-venv
    /tmp/pyd-venv/bin/pip install pydicom==3.0.2 numpy==2.4.6 pylibjpeg==2.1.0 \
        pylibjpeg-libjpeg==2.5.0 pylibjpeg-openjpeg==2.6.0 pylibjpeg-rle==2.2.0 pyjpegls==1.5.1
    scripts/fetch-dicom-corpus.sh
    /tmp/pyd-venv/bin/python scripts/dicom-corpus-reference.py .cache/dicom-corpus \
        > crates/imaging/tests/data/dicom-corpus.tsv

pydicom (with libjpeg, OpenJPEG, the RLE plugin and CharLS) decodes the first frame; the
intensity pipeline is the one ortl documents (crates/imaging/src/dicom.rs), written here from
PS3.3 C.11 rather than from ortl's code:
  grey:   modality LUT (rescale or Modality LUT Sequence), then the first VOI LUT, else the
          first window with its VOI LUT Function, else a min-max stretch over modality values
          leaving out Pixel Padding Value..Range Limit; MONOCHROME1 inverted; rounded to 8 bits.
  colour: RGB (pydicom converts YBR_* to RGB, PALETTE COLOR through its LUTs), scaled from
          Bits Stored (or the palette's bits) to 8 bits.
Each row: file, transfer syntax, photometric, width, height, channels, mean and standard
deviation over every sample, the samples at five fixed pixels, and a grid of at most 16x16
block means per channel (cells split at floor(i * size / cells)), all at the native size.
Files pydicom cannot decode are written to stderr and get no row.
"""

import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut

# Every grey and colour transfer syntax and photometric interpretation in pydicom's test
# files, not every variant of each.
FILES = """
CT_small.dcm MR_small.dcm MR_small_implicit.dcm MR_small_bigendian.dcm MR_small_expb.dcm
MR_small_padded.dcm MR_small_RLE.dcm MR_small_jp2klossless.dcm MR_small_jpeg_ls_lossless.dcm
MR_truncated.dcm JPGExtended.dcm JPEG-lossy.dcm JPEG2000.dcm 693_J2KI.dcm
J2K_pixelrep_mismatch.dcm JPEGLSNearLossless_08.dcm JPEGLSNearLossless_16.dcm image_dfl.dcm
liver_1frame.dcm liver_expb_1frame.dcm examples_overlay.dcm rtdose.dcm rtdose_1frame.dcm
rtdose_expb_1frame.dcm rtdose_rle_1frame.dcm badVR.dcm
ExplVR_BigEnd.dcm SC_rgb_small_odd.dcm SC_rgb_small_odd_big_endian.dcm examples_rgb_color.dcm
SC_rgb_rle.dcm SC_rgb_rle_16bit.dcm SC_rgb_rle_32bit.dcm SC_rgb_rle_2frame.dcm
SC_rgb_jpeg.dcm SC_rgb_jpeg_dcmtk.dcm SC_rgb_small_odd_jpeg.dcm SC_rgb_dcmtk_+eb+cr.dcm
SC_rgb_dcmtk_+eb+cy+n1.dcm SC_rgb_dcmtk_+eb+cy+np.dcm SC_rgb_jpeg_lossy_gdcm.dcm
SC_jpeg_no_color_transform.dcm SC_rgb_jpeg_app14_dcmd.dcm SC_rgb_jpeg_gdcm.dcm
SC_rgb_gdcm_KY.dcm GDCMJ2K_TextGBR.dcm examples_jpeg2k.dcm SC_rgb_jls_lossy_line.dcm
SC_ybr_full_422_uncompressed.dcm examples_ybr_color.dcm examples_palette.dcm
""".split()

GRID = 16


def attribute(ds, keyword, sequence):
    """A keyword from the data set, else from the first frame's functional groups."""
    if keyword in ds:
        return ds[keyword].value
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if groups in ds and sequence in ds[groups][0] and keyword in ds[groups][0][sequence][0]:
            return ds[groups][0][sequence][0][keyword].value
    return None


def first(value):
    return float(value[0] if isinstance(value, pydicom.multival.MultiValue) else value)


def lut_first(value, signed):
    # The first mapped value may be written as US for signed input (PS3.3 C.11.1.1.1).
    return value - 65536 if signed and value > 32767 else value


def grey(ds, stored):
    signed = ds.get("PixelRepresentation", 0) == 1
    values = apply_modality_lut(stored, ds).astype(np.float64)
    center = attribute(ds, "WindowCenter", "FrameVOILUTSequence")
    width = attribute(ds, "WindowWidth", "FrameVOILUTSequence")
    function = attribute(ds, "VOILUTFunction", "FrameVOILUTSequence") or "LINEAR"
    if "VOILUTSequence" in ds:
        item = ds.VOILUTSequence[0]
        entries, first_value, bits = item.LUTDescriptor
        data = np.asarray(item.LUTData, dtype=np.float64)
        index = np.clip(np.round(values) - lut_first(first_value, signed), 0, len(data) - 1)
        y = data[index.astype(np.int64)] / (2**bits - 1) * 255
    elif center is not None and width is not None:
        c, w = first(center), first(width)
        if function == "LINEAR_EXACT":
            y = np.clip((values - c) / w + 0.5, 0, 1) * 255
        elif function == "SIGMOID":
            y = 255 / (1 + np.exp(-4 * (values - c) / w))
        else:
            y = np.clip((values - (c - 0.5)) / max(w - 1, 1e-30) + 0.5, 0, 1) * 255
    else:
        keep = np.ones(stored.shape, bool)
        if "PixelPaddingValue" in ds:
            a = int(ds.PixelPaddingValue)
            b = int(ds.get("PixelPaddingRangeLimit", a))
            keep = (stored < min(a, b)) | (stored > max(a, b))
        low, high = (values[keep].min(), values[keep].max()) if keep.any() else (0, 0)
        y = (values - low) / (high - low) * 255 if high > low else np.zeros(values.shape)
    y = np.floor(np.clip(y, 0, 255) + 0.5)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        y = 255 - y
    return y[..., np.newaxis]


def colour(ds, frame):
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        bits = ds.RedPaletteColorLookupTableDescriptor[2]
        rgb = apply_color_lut(frame, ds)
    else:
        bits = ds.BitsStored
        rgb = frame
    return np.floor(rgb.astype(np.float64) / (2**bits - 1) * 255 + 0.5)


def cells(size):
    n = min(GRID, size)
    return [(i * size // n, (i + 1) * size // n) for i in range(n)]


def row(path):
    ds = pydicom.dcmread(path)
    frames = int(ds.get("NumberOfFrames") or 1) if str(ds.get("NumberOfFrames", "1")).isdigit() else 1
    pixels = ds.pixel_array
    frame = pixels[0] if frames > 1 else pixels
    image = colour(ds, frame) if ds.PhotometricInterpretation not in ("MONOCHROME1", "MONOCHROME2") else grey(ds, frame)
    height, width, channels = image.shape
    points = [(0, 0), (height // 2, width // 2), (height - 1, width - 1), (height // 4, 3 * width // 4), (3 * height // 4, width // 4)]
    samples = [int(image[y, x, c]) for y, x in points for c in range(channels)]
    grid = [
        image[r0:r1, c0:c1, c].mean()
        for r0, r1 in cells(height)
        for c0, c1 in cells(width)
        for c in range(channels)
    ]
    return [
        path.name,
        ds.file_meta.TransferSyntaxUID,
        ds.PhotometricInterpretation,
        width,
        height,
        channels,
        f"{image.mean():.3f}",
        f"{image.std():.3f}",
        " ".join(map(str, samples)),
        " ".join(f"{v:.1f}" for v in grid),
    ]


def main():
    folder = Path(sys.argv[1])
    print("# Generated by scripts/dicom-corpus-reference.py from pydicom 3.0.2's test files; see its header.")
    print("file\ttransfer_syntax\tphotometric\twidth\theight\tchannels\tmean\tstd\tsamples\tgrid")
    for name in FILES:
        try:
            print("\t".join(map(str, row(folder / name))))
        except Exception as error:  # noqa: BLE001 - reported, and the test names the file
            print(f"{name}: pydicom cannot decode it ({error})", file=sys.stderr)


if __name__ == "__main__":
    main()
