"""WebDataset shard fixtures in the SARLO-80 layout, written by numpy, Pillow and Python's tarfile.

SARLO-80 (ONERA, https://huggingface.co/datasets/ONERA/SARLO-80) publishes `<split>/chunk_NNN/shard-NNNNN.tar`
WebDataset shards; each sample (key: an 8-digit index) has `.sar.npy` (complex64 single-look complex SAR,
(H, W)), `.sar.png` (8-bit amplitude), `.meta.json` (metadata with `caption.SHORT|MID|LONG`) and `.sicd.xml`.
This writes a tiny split in that layout from synthetic scenes (regions of different reflectivity with
fully developed complex speckle), and `expected.json` with what numpy and Pillow read back: the amplitude
|z| of every array and the values of every PNG, so sardine's readers are checked against the writers.

Variations a reader must handle: the default (pax) and the GNU tar formats, a Fortran-order array, a complex128
array, members the reader skips (`.sicd.xml`, a directory entry); and two one-sample archives whose member names
are too long for ustar.

Run from the repository root: .venv/bin/python tools/make_webdataset_fixtures.py
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path("test/fixtures/webdataset")
SPLIT = OUT / "sarlo80" / "train"
SIDE = 24
CAPTIONS = [
    ("A harbour.", "A harbour with two ships moored along a pier.", "An aerial view of a harbour: two ships moored along a concrete pier, calm water around them and warehouses on the shore."),
    ("Farmland.", "Rectangular fields crossed by a road.", "Rectangular agricultural fields of different crops, crossed by a straight road running from north to south."),
    ("A town.", "Dense buildings around a square.", "A dense town centre with buildings of several storeys around a central square and narrow streets."),
    ("A lake.", "A lake surrounded by forest.", "A calm lake surrounded by a mixed forest, a small beach on its eastern shore."),
    ("A bridge.", "A bridge over a river.", "A road bridge crossing a wide river between two built-up banks."),
    ("An airport.", "A runway with taxiways.", "An airport runway with parallel taxiways and a few parked aircraft near the terminal."),
    ("Woodland.", "A dense forest.", "A dense coniferous forest with a narrow track running through it."),
]


def scene(rng: np.random.Generator, index: int) -> np.ndarray:
    """Complex SLC of a synthetic scene: reflectivity regions times circular complex Gaussian speckle."""
    y, x = np.mgrid[0:SIDE, 0:SIDE]
    reflectivity = np.full((SIDE, SIDE), 0.2 + 0.1 * index)
    reflectivity[(x - 8) ** 2 + (y - 12) ** 2 < 30] = 0.02  # dark water
    reflectivity[(x > 14 + index % 4) & (y < 10)] = 4.0  # bright built-up block
    speckle = (rng.standard_normal((SIDE, SIDE)) + 1j * rng.standard_normal((SIDE, SIDE))) / np.sqrt(2)
    return (np.sqrt(reflectivity) * speckle).astype(np.complex64)


def amplitude_png(slc: np.ndarray) -> np.ndarray:
    amplitude = np.abs(slc)
    return np.clip(np.round(amplitude / amplitude.max() * 255), 0, 255).astype(np.uint8)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def png_bytes(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


# (shard path, tar format, sample indices)
SHARDS = [
    ("chunk_000/shard-00000.tar", tarfile.PAX_FORMAT, [0, 1, 2]),
    ("chunk_000/shard-00001.tar", tarfile.GNU_FORMAT, [3, 4]),
    ("chunk_001/shard-00000.tar", tarfile.PAX_FORMAT, [5, 6]),
]


def main() -> None:
    rng = np.random.default_rng(80)
    expected: dict = {"side": SIDE, "shards": [], "samples": []}
    for shard, fmt, indices in SHARDS:
        path = SPLIT / shard
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w", format=fmt) as tar:
            if shard.endswith("00001.tar"):
                directory = tarfile.TarInfo("extras")
                directory.type = tarfile.DIRTYPE
                tar.addfile(directory)
            for index in indices:
                key = f"{index:08d}"
                slc = scene(rng, index)
                stored = slc
                if index == 4:
                    stored = np.asfortranarray(slc)
                if index == 6:
                    stored = slc.astype(np.complex128)
                short, mid, long = CAPTIONS[index]
                meta = {"city": f"city-{index}", "Nb_pixel_a": SIDE, "Nb_pixel_r": SIDE,
                        "caption": {"SHORT": short, "MID": mid, "LONG": long}}
                png = amplitude_png(slc)
                add(tar, f"{key}.sar.npy", npy_bytes(stored))
                add(tar, f"{key}.sar.png", png_bytes(png))
                add(tar, f"{key}.meta.json", json.dumps(meta).encode())
                add(tar, f"{key}.sicd.xml", b"<SICD><CollectionInfo/></SICD>")
                read_back = np.load(io.BytesIO(npy_bytes(stored)))
                expected["samples"].append({
                    "shard": shard, "key": key, "captions": meta["caption"], "dtype": str(read_back.dtype),
                    "fortranOrder": bool(read_back.flags.f_contiguous and not read_back.flags.c_contiguous),
                    "amplitude": [float(v) for v in np.abs(read_back).astype(np.float32).ravel()],
                    "png": [int(v) for v in np.asarray(Image.open(io.BytesIO(png_bytes(png)))).ravel()],
                })
        expected["shards"].append({"path": shard, "format": {tarfile.PAX_FORMAT: "pax", tarfile.GNU_FORMAT: "gnu"}[fmt]})
    # Member names too long for a ustar header: a pax "path" record, and GNU's long-name entry.
    for name, fmt in [("long-names-pax.tar", tarfile.PAX_FORMAT), ("long-names-gnu.tar", tarfile.GNU_FORMAT)]:
        with tarfile.open(OUT / name, "w", format=fmt) as tar:
            add(tar, "deep/" + "b" * 150 + "/00000007.txt", f"a caption in a {name[11:14]}-named member".encode())
            add(tar, "deep/" + "b" * 150 + "/00000007.sar.png", png_bytes(np.arange(64, dtype=np.uint8).reshape(8, 8)))
    (OUT / "expected.json").write_text(json.dumps(expected) + "\n")


if __name__ == "__main__":
    main()
