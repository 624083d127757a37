"""Writes CLIP's BPE vocabulary (vocab.json + merges.txt, as transformers' CLIPTokenizer reads them) from the
`bpe_simple_vocab_16e6.txt.gz` that the open_clip_torch wheel ships (MIT licence; the file is OpenAI CLIP's).

    pip download --no-deps open_clip_torch==3.3.0 -d /tmp/oc
    python tools/make_clip_vocabulary.py /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl \
        experiments/architectures/sdxl/tokenizer experiments/architectures/sdxl/tokenizer_2

The ids follow the construction of CLIP's own tokenizer (and of open_clip's): the 256 byte symbols in
GPT-2's byte-to-unicode order, the same with the end-of-word mark `</w>`, one entry per merge of the first
48,894 merges of the file, then `<|startoftext|>` (49406) and `<|endoftext|>` (49407): 49,408 ids. Only the
standard library is used, so anyone can rerun it.
"""

import gzip
import io
import json
import sys
import zipfile
from pathlib import Path

from byte_level import bytes_to_unicode

VOCAB_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
# CLIP keeps the first 49152 - 256 - 2 merges of the file (the first line is a version header).
MERGE_COUNT = 49152 - 256 - 2
SPECIALS = ["<|startoftext|>", "<|endoftext|>"]


def read_merges(source: Path):
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            compressed = wheel.read(VOCAB_MEMBER)
    else:
        compressed = source.read_bytes()
    lines = gzip.GzipFile(fileobj=io.BytesIO(compressed)).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    if len(merges) != MERGE_COUNT or any(len(m) != 2 for m in merges):
        raise SystemExit(f"{source}: expected {MERGE_COUNT} merges of two symbols")
    return merges


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    merges = read_merges(Path(sys.argv[1]))
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + SPECIALS
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != 49408:
        raise SystemExit(f"the vocabulary has {len(vocab)} distinct tokens, not 49408")
    for folder in sys.argv[2:]:
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        (out / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
        print(f"{out}: {len(vocab)} tokens, {len(merges)} merges")


if __name__ == "__main__":
    main()
