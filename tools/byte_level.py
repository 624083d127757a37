"""GPT-2's byte-level alphabet, which CLIP's BPE shares: shared by the tools that write CLIP vocabularies."""


def bytes_to_unicode() -> dict[int, str]:
    """The byte-to-printable-character table of GPT-2 / CLIP byte-level BPE (its order fixes the first ids)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))
