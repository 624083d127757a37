"""Small image fixtures and their decoded values, written by the reference libraries.

PNG/JPEG files are written and decoded by Pillow, TIFF files by tifffile; `expected.json` holds
what those libraries read back, so sardine's decoders are checked against them, not against
themselves. Run from the repo root:

    .venv/bin/python tools/make_image_fixtures.py
"""

import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

OUT = Path("test/fixtures/images")
H, W = 5, 7  # odd sizes catch row/column mix-ups


def ramp(channels: int, scale: float, dtype) -> np.ndarray:
    y, x, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(channels), indexing="ij")
    return ((y * W * channels + x * channels + c) * scale).astype(dtype)


def record(expected: dict, name: str, values: np.ndarray, sample_type: str, bands: int, fmt: str, no_data=None):
    values = values if values.ndim == 3 else values[:, :, None]
    entry = {
        "format": fmt,
        "width": int(values.shape[1]),
        "height": int(values.shape[0]),
        "bands": bands,
        "channels": int(values.shape[2]),
        "sampleType": sample_type,
        "data": [float(v) for v in values.astype(np.float64).ravel()],
    }
    if no_data is not None:
        entry["noData"] = no_data
    expected[name] = entry


def png_and_jpeg(expected: dict) -> None:
    grey = ramp(1, 7, np.uint8)[:, :, 0]
    Image.fromarray(grey).save(OUT / "grey8.png")
    rgb = ramp(3, 2.4, np.uint8)
    Image.fromarray(rgb).save(OUT / "rgb8.png")
    la = np.dstack([grey, 255 - grey])
    Image.fromarray(la).save(OUT / "grey-alpha8.png")
    grey16 = ramp(1, 1871, np.uint16)[:, :, 0]
    Image.fromarray(grey16).save(OUT / "grey16.png")
    palette = Image.fromarray((ramp(1, 1, np.uint8)[:, :, 0] % 4)).convert("P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    palette.save(OUT / "palette.png")
    Image.fromarray(rgb).save(OUT / "rgb.jpg", quality=95)
    Image.fromarray(grey).save(OUT / "grey.jpg", quality=95)

    # What Pillow reads back (its own decoders are the reference).
    for name, sample_type in [("grey8.png", "uint8"), ("rgb8.png", "uint8"), ("grey-alpha8.png", "uint8"),
                              ("grey16.png", "uint16"), ("rgb.jpg", "uint8"), ("grey.jpg", "uint8")]:
        with Image.open(OUT / name) as im:
            values = np.array(im)
        fmt = "jpeg" if name.endswith(".jpg") else "png"
        bands = 1 if values.ndim == 2 else values.shape[2]
        record(expected, name, values, sample_type, bands, fmt)
    with Image.open(OUT / "palette.png") as im:
        record(expected, "palette.png", np.array(im.convert("RGB")), "uint8", 3, "png")


def tiffs(expected: dict) -> None:
    f32 = (ramp(1, 0.37, np.float32)[:, :, 0] - 4.0).astype(np.float32)
    cases = {
        "float32.tif": (f32, {}),
        "float64.tif": (f32.astype(np.float64) / 3.0, {}),
        "uint16.tif": (ramp(1, 1871, np.uint16)[:, :, 0], {}),
        "int16.tif": (ramp(1, 977, np.int16)[:, :, 0] - 16000, {}),
        "uint8.tif": (ramp(1, 7, np.uint8)[:, :, 0], {}),
        # tifffile without imagecodecs compresses with zlib only; LZW/float predictors need imagecodecs.
        "float32-deflate.tif": (f32, {"compression": "zlib"}),
        "uint16-deflate-predictor.tif": (ramp(1, 1871, np.uint16)[:, :, 0], {"compression": "zlib", "predictor": 2}),
        "float32-tiled.tif": (np.tile(f32, (4, 3)), {"tile": (16, 16)}),
        "float32-bigendian.tif": (f32, {"byteorder": ">"}),
        "float32-bigtiff.tif": (f32, {"bigtiff": True}),
        "uint16-bigtiff-bigendian.tif": (ramp(1, 1871, np.uint16)[:, :, 0], {"bigtiff": True, "byteorder": ">"}),
        "float32-3band.tif": (ramp(3, 0.25, np.float32), {"photometric": "minisblack", "planarconfig": "contig"}),
        "float32-3band-planar.tif": (np.moveaxis(ramp(3, 0.25, np.float32), 2, 0), {"photometric": "minisblack", "planarconfig": "separate"}),
    }
    for name, (values, options) in cases.items():
        tifffile.imwrite(OUT / name, values, **options)
    with_no_data = f32.copy()
    with_no_data[1, 2] = -99.0
    tifffile.imwrite(OUT / "float32-nodata.tif", with_no_data, extratags=[(42113, "s", 0, "-99", True)])

    # Files sardine must refuse as unsupported: 1-bit samples, and a compression it has no decoder for
    # (JPEG 2000, code 34712, patched into an uncompressed file's Compression tag).
    tifffile.imwrite(OUT / "bilevel.tif", ramp(1, 1, np.uint8)[:, :, 0] % 2 == 1)
    tifffile.imwrite(OUT / "unsupported-compression.tif", f32)
    with tifffile.TiffFile(OUT / "unsupported-compression.tif") as tif:
        tag = tif.pages[0].tags["Compression"]
        at, little = tag.valueoffset, tif.byteorder == "<"
    data = bytearray((OUT / "unsupported-compression.tif").read_bytes())
    data[at:at + 2] = (34712).to_bytes(2, "little" if little else "big")
    (OUT / "unsupported-compression.tif").write_bytes(bytes(data))

    re = ramp(1, 0.5, np.float32)[:, :, 0] - 3.0
    im = ramp(1, 0.25, np.float32)[::-1, ::-1, 0] - 1.0
    complex64 = (re + 1j * im).astype(np.complex64)
    tifffile.imwrite(OUT / "complex64.tif", complex64)

    type_names = {"float32": "float32", "float64": "float64", "uint16": "uint16", "int16": "int16",
                  "uint8": "uint8", "complex64": "complex64"}
    for name in [*cases.keys(), "float32-nodata.tif", "complex64.tif"]:
        with tifffile.TiffFile(OUT / name) as tif:
            page = tif.pages[0]
            values = page.asarray()
            bands = page.samplesperpixel
            no_data = page.tags.get(42113)
            dtype = str(page.dtype)
        if page.planarconfig == 2:
            values = np.moveaxis(values, 0, 2)
        if np.iscomplexobj(values):
            values = np.abs(values)  # sardine reads complex samples as their magnitude
        record(expected, name, values, type_names[dtype], bands, "tiff",
               float(no_data.value.strip("\x00")) if no_data is not None else None)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    expected: dict = {}
    png_and_jpeg(expected)
    tiffs(expected)
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(expected)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
