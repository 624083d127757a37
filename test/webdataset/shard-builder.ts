import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"

/*
 * Shards for tests, packed by GNU tar (a real writer, not sardine's reader in reverse) from member
 * files, and NumPy `.npy` bytes in the format numpy writes (checked against numpy's own files in
 * webdataset.test.ts).
 */

/** `.npy` version 1.0 bytes of a C-order array: numpy's header dict, padded with spaces to 64 bytes. */
export const npyBytes = (descr: string, shape: ReadonlyArray<number>, values: ArrayBufferView): Uint8Array => {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${shape.length === 1 ? "," : ""}), }`
  const unpadded = 10 + dict.length + 1
  const header = dict + " ".repeat(Math.ceil(unpadded / 64) * 64 - unpadded) + "\n"
  const out = new Uint8Array(10 + header.length + values.byteLength)
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8])
  out.set(new TextEncoder().encode(header), 10)
  out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), 10 + header.length)
  return out
}

/** Writes `members` (archive name → bytes, in archive order) as the tar file `shard`. */
export const writeShard = (shard: string, members: ReadonlyArray<readonly [string, Uint8Array | string]>): void => {
  const staging = mkdtempSync(join(tmpdir(), "sardine-shard-"))
  try {
    for (const [name, bytes] of members) {
      mkdirSync(dirname(join(staging, name)), { recursive: true })
      writeFileSync(join(staging, name), bytes)
    }
    mkdirSync(dirname(shard), { recursive: true })
    execFileSync("tar", ["-cf", shard, "-C", staging, ...members.map(([name]) => name)])
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}
