// A plain async generator (no Effect here), reading 1 MiB chunks from Node's stream as they come.
import { createReadStream } from "node:fs"

/*
 * A streaming reader of the tar archives WebDataset shards are (POSIX ustar, with the pax and GNU
 * long-name extensions Python's tarfile and GNU tar write). Members are read in order from a file
 * stream; only the members the caller wants are held in memory, one at a time, so a shard of any
 * size is read in constant memory. A cut or damaged archive is an error that says where.
 */

const BLOCK = 512

/** A regular file of the archive, in archive order. `bytes` is absent for members the caller skipped. */
export interface TarMember {
  readonly name: string
  readonly size: number
  /** Offset of the member's data in the archive. */
  readonly offset: number
  readonly bytes?: Uint8Array
}

/** Why an archive cannot be read on: the stream ended inside it, or a header is damaged. */
export class TarError extends Error {
  constructor(readonly kind: "truncated" | "corrupt", readonly reason: string, readonly member?: string) {
    super(reason)
  }
}

const text = (block: Uint8Array, from: number, length: number): string => {
  const field = block.subarray(from, from + length)
  const end = field.indexOf(0)
  return new TextDecoder().decode(end === -1 ? field : field.subarray(0, end))
}

/** A numeric header field: octal ASCII, or base-256 (high bit set) for values too large for octal. */
const number = (block: Uint8Array, from: number, length: number): number => {
  // Fields lie inside the 512-byte header block.
  if (block[from]! & 0x80) {
    let value = block[from]! & 0x7f
    for (let i = from + 1; i < from + length; i++) value = value * 256 + block[i]!
    return value
  }
  const digits = text(block, from, length).trim()
  if (digits === "") return 0
  if (!/^[0-7]+$/.test(digits)) return NaN
  return parseInt(digits, 8)
}

/** The header checksum: the sum of its bytes with the checksum field read as spaces. */
const checksumOf = (block: Uint8Array): number => {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!
  return sum
}

const isZero = (block: Uint8Array) => block.every((b) => b === 0)

/** The `path` record of a pax extended header (`<length> path=<value>\n` records). */
const paxPath = (data: Uint8Array): string | undefined => {
  const records = new TextDecoder().decode(data)
  let at = 0
  while (at < records.length) {
    const space = records.indexOf(" ", at)
    const length = parseInt(records.slice(at, space), 10)
    if (!(length > 0)) return undefined
    const record = records.slice(space + 1, at + length - 1)
    if (record.startsWith("path=")) return record.slice(5)
    at += length
  }
  return undefined
}

/** Reads exactly n bytes at a time from a chunked byte stream. */
const byteReader = (chunks: AsyncIterator<Uint8Array>) => {
  const buffered: Array<Uint8Array> = []
  let available = 0
  let position = 0
  let ended = false
  const fill = async (n: number) => {
    while (available < n && !ended) {
      const next = await chunks.next()
      if (next.done) ended = true
      else {
        buffered.push(next.value)
        available += next.value.length
      }
    }
  }
  return {
    get position() {
      return position
    },
    /** Up to n bytes (fewer only at the end of the stream); `keep` false discards them without copying. */
    take: async (n: number, keep = true): Promise<Uint8Array> => {
      const out = keep ? new Uint8Array(n) : undefined
      let done = 0
      while (done < n) {
        await fill(Math.min(n - done, 1 << 20))
        const head = buffered[0]
        if (available === 0 || head === undefined) break
        const count = Math.min(head.length, n - done)
        out?.set(head.subarray(0, count), done)
        if (count === head.length) buffered.shift()
        else buffered[0] = head.subarray(count)
        available -= count
        done += count
        position += count
      }
      if (out !== undefined && done < n) return out.subarray(0, done)
      return out ?? new Uint8Array(0)
    }
  }
}

/**
 * The regular-file members of the tar archive `file`, in order. `wanted(name)` says which members'
 * bytes to read; the others are skipped without being held. Members larger than `maxMemberBytes` are
 * listed without bytes (`tooLarge`). Directories, links and metadata entries are passed over, as
 * WebDataset's reader does.
 */
export async function* tarMembers(
  file: string,
  wanted: (name: string) => boolean,
  maxMemberBytes: number
): AsyncGenerator<TarMember & { readonly tooLarge?: boolean }> {
  const stream = createReadStream(file, { highWaterMark: 1 << 20 })
  const reader = byteReader(stream[Symbol.asyncIterator]())
  try {
    let longName: string | undefined
    let sawEnd = false
    while (true) {
      const at = reader.position
      const header = await reader.take(BLOCK)
      if (header.length === 0) break
      if (header.length < BLOCK) throw new TarError("truncated", `truncated: the archive ends inside a member header at byte ${at + header.length}`)
      if (isZero(header)) {
        sawEnd = true
        break
      }
      const recorded = number(header, 148, 8)
      if (recorded !== checksumOf(header)) {
        throw new TarError("corrupt", `corrupt: the member header at byte ${at} has a bad checksum (not a tar archive, or damaged)`)
      }
      const size = number(header, 124, 12)
      if (!Number.isFinite(size)) throw new TarError("corrupt", `corrupt: the member header at byte ${at} has an unreadable size`)
      const type = String.fromCharCode(header[156] || 48)
      const ustar = text(header, 257, 5) === "ustar"
      const prefix = ustar ? text(header, 345, 155) : ""
      const headerName = prefix !== "" ? `${prefix}/${text(header, 0, 100)}` : text(header, 0, 100)
      const name = longName ?? headerName
      const padded = Math.ceil(size / BLOCK) * BLOCK
      const regular = type === "0" || type === "7"
      const extension = type === "x" || type === "L"
      const keep = extension || (regular && wanted(name) && size <= maxMemberBytes)
      const offset = reader.position
      const data = await reader.take(size, keep)
      const skippedShort = !keep && reader.position - offset < size
      if ((keep && data.length < size) || skippedShort) {
        throw new TarError(
          "truncated",
          `truncated: member "${name}" needs ${size} bytes from byte ${offset}, the archive ends at byte ${reader.position}`,
          name
        )
      }
      await reader.take(padded - size, false)
      if (extension) {
        longName = type === "L" ? text(data, 0, data.length) : paxPath(data) ?? longName
        continue
      }
      longName = undefined
      if (!regular) continue
      const base = name.slice(name.lastIndexOf("/") + 1)
      // WebDataset skips its own "__name__" entries.
      if (base.startsWith("__") && base.endsWith("__")) continue
      yield keep ? { name, size, offset, bytes: data } : { name, size, offset, ...(regular && wanted(name) ? { tooLarge: true } : {}) }
    }
    if (!sawEnd) {
      throw new TarError("truncated", `truncated: the archive ends at byte ${reader.position} without its end-of-archive blocks (cut between two members?)`)
    }
  } finally {
    stream.destroy()
  }
}
