import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdtemp, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SafetensorsError } from "../../adapters/safetensors/safetensors-error.ts"
import { openSafetensors, readSafetensorsHeader } from "../../adapters/safetensors/safetensors-reader.ts"
import { writeSafetensors } from "../../adapters/safetensors/safetensors-writer.ts"

const FIXTURE = "test/fixtures/safetensors/dtypes.safetensors"

/** A fresh folder, removed when the test's scope closes. */
const temporaryFolder = () =>
  Effect.acquireRelease(
    Effect.promise(() => mkdtemp(join(tmpdir(), "sardine-safetensors-"))),
    (folder) => Effect.promise(() => rm(folder, { recursive: true, force: true }))
  )

/** Bit patterns, so NaN, -0 and infinities compare exactly. */
const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length))

/** A safetensors file from a header object and raw data bytes, exactly as given (for corrupt files). */
const rawFile = async (folder: string, name: string, header: unknown, data: Uint8Array, declaredLength?: number) => {
  const json = new TextEncoder().encode(JSON.stringify(header))
  const bytes = new Uint8Array(8 + json.length + data.length)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(declaredLength ?? json.length), true)
  bytes.set(json, 8)
  bytes.set(data, 8 + json.length)
  const file = join(folder, name)
  await writeFile(file, bytes)
  return file
}

/** The stored bytes of one tensor, read straight from the file. */
const tensorBytes = async (file: string, name: string) => {
  const header = await Effect.runPromise(readSafetensorsHeader(file))
  const t = header.byName.get(name)!
  return (await readFile(file)).subarray(t.begin, t.end)
}

describe("safetensors reader on a file written by the reference library", () => {
  it.scoped("decodes F16 and BF16 exactly as torch upcasts them, and F64 / F32 as stored", () =>
    Effect.gen(function*() {
      const reader = yield* openSafetensors(FIXTURE)
      expect(bits(yield* reader.readFloat32("f16"))).toEqual(bits(yield* reader.readFloat32("f16_as_f32")))
      expect(bits(yield* reader.readFloat32("bf16"))).toEqual(bits(yield* reader.readFloat32("bf16_as_f32")))
      expect(bits(yield* reader.readFloat32("f64"))).toEqual(bits(yield* reader.readFloat32("f32")))
      expect(Array.from(yield* reader.readFloat32("scalar"))).toEqual([42])
      expect((yield* reader.readFloat32("empty")).length).toBe(0)
    }))

  it.scoped("reads integer and boolean tensors as int32", () =>
    Effect.gen(function*() {
      const reader = yield* openSafetensors(FIXTURE)
      const ints = [0, 1, -1, 2147483647, -2147483648, 123456]
      expect(Array.from(yield* reader.readInt32("i64"))).toEqual(ints)
      expect(Array.from(yield* reader.readInt32("i32"))).toEqual(ints)
      expect(Array.from(yield* reader.readInt32("i16"))).toEqual([0, -5, 32767, -32768])
      expect(Array.from(yield* reader.readInt32("u8"))).toEqual([0, 7, 255])
      expect(Array.from(yield* reader.readInt32("bool"))).toEqual([1, 0, 1])
    }))

  it.scoped("exposes shapes, dtypes and __metadata__ from the header alone", () =>
    Effect.gen(function*() {
      const header = yield* readSafetensorsHeader(FIXTURE)
      expect(header.metadata).toEqual({ format: "pt", purpose: "sardine dtype fixture" })
      expect(header.byName.get("bf16")).toMatchObject({ dtype: "BF16", shape: [8, 8] })
      expect(header.byName.get("scalar")?.shape).toEqual([])
      expect(header.tensors.length).toBe(13)
    }))

  it.scoped("names the tensor when its dtype cannot be read as float32, or when it is absent", () =>
    Effect.gen(function*() {
      const reader = yield* openSafetensors(FIXTURE)
      const wrongType = yield* Effect.flip(reader.readFloat32("i64"))
      expect(wrongType).toMatchObject({ file: FIXTURE, tensor: "i64" })
      expect(wrongType.reason).toContain("not a floating-point type")
      const absent = yield* Effect.flip(reader.readFloat32("nope"))
      expect(absent.message).toBe(`${FIXTURE}: tensor "nope": no such tensor in the file`)
    }))
})

describe("safetensors writer", () => {
  it.scoped("writes F16 / BF16 with the reference's rounding (ties to even, overflow, NaN) and F32 as is", () =>
    Effect.gen(function*() {
      const values = yield* Effect.scoped(Effect.flatMap(openSafetensors(FIXTURE), (r) => r.readFloat32("f32")))
      const folder = yield* temporaryFolder()
      const file = join(folder, "out.safetensors")
      yield* writeSafetensors(file, [
        { name: "f16", dtype: "F16", shape: [8, 8], data: values },
        { name: "bf16", dtype: "BF16", shape: [8, 8], data: () => values },
        { name: "f32", dtype: "F32", shape: [8, 8], data: values },
        { name: "i32", dtype: "I32", shape: [2], data: Int32Array.from([7, -7]) }
      ], { note: "written by sardine" })
      for (const name of ["f16", "f32"]) {
        const [ours, reference] = yield* Effect.promise(() => Promise.all([tensorBytes(file, name), tensorBytes(FIXTURE, name)]))
        expect(Buffer.from(ours).equals(Buffer.from(reference)), name).toBe(true)
      }
      // Same values for BF16; only NaN's payload differs (torch's vectorised cast writes 0xFFFF, we write 0x7FC0).
      const decode = (f: string) => Effect.scoped(Effect.flatMap(openSafetensors(f), (r) => r.readFloat32("bf16")))
      expect(Array.from(yield* decode(file))).toEqual(Array.from(yield* decode(FIXTURE)))
      const header = yield* readSafetensorsHeader(file)
      expect(header.metadata).toEqual({ note: "written by sardine" })
      const reread = yield* Effect.scoped(Effect.flatMap(openSafetensors(file), (r) => r.readInt32("i32")))
      expect(Array.from(reread)).toEqual([7, -7])
      // The header is padded to 8 bytes like the reference writer's, so data stays aligned.
      expect(header.tensors[0]!.begin % 8).toBe(0)
    }))

  it.scoped("leaves no file behind when a tensor's data does not fit its shape", () =>
    Effect.gen(function*() {
      const folder = yield* temporaryFolder()
      const error = yield* Effect.flip(writeSafetensors(join(folder, "bad.safetensors"), [
        { name: "ok", dtype: "F32", shape: [2], data: new Float32Array(2) },
        { name: "short", dtype: "F32", shape: [3], data: new Float32Array(2) }
      ]))
      expect(error).toMatchObject({ tensor: "short" })
      expect(yield* Effect.promise(() => readdir(folder))).toEqual([])
    }))
})

describe("corrupt safetensors files name the file and the fault", () => {
  const f32 = (shape: Array<number>, begin: number) => ({ dtype: "F32", shape, data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)] })

  it.scoped.each(
    [
      ["truncated data", { a: f32([4], 0), b: f32([4], 16) }, 24, "b", "truncated"],
      ["overlapping offsets", { a: f32([4], 0), b: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }, 24, "b", "overlaps tensor \"a\""],
      ["a gap between tensors", { a: f32([2], 0), b: f32([2], 12) }, 20, "b", "belong to no tensor"],
      ["an unknown dtype", { a: { dtype: "F12", shape: [2], data_offsets: [0, 4] } }, 4, "a", "unknown dtype \"F12\""],
      ["offsets that disagree with the shape", { a: { dtype: "F16", shape: [3], data_offsets: [0, 4] } }, 4, "a", "needs 6"],
      ["a negative dimension", { a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4, "a", "non-negative integers"],
      ["bytes after the last tensor", { a: f32([1], 0) }, 8, undefined, "belong to no tensor"]
    ] as const
  )("%s", ([, header, dataBytes, tensor, reason]) =>
    Effect.gen(function*() {
      const folder = yield* temporaryFolder()
      const file = yield* Effect.promise(() => rawFile(folder, "bad.safetensors", header, new Uint8Array(dataBytes)))
      const error = yield* Effect.flip(readSafetensorsHeader(file))
      expect(error).toBeInstanceOf(SafetensorsError)
      expect(error.file).toBe(file)
      expect(error.tensor).toBe(tensor)
      expect(error.reason).toContain(reason)
    }))

  it.scoped("a header length past the end of the file", () =>
    Effect.gen(function*() {
      const folder = yield* temporaryFolder()
      const file = yield* Effect.promise(() => rawFile(folder, "bad.safetensors", { a: f32([1], 0) }, new Uint8Array(4), 5000))
      expect((yield* Effect.flip(readSafetensorsHeader(file))).reason).toContain("runs past the end")
    }))

  it.scoped("a header that is not JSON, and a file shorter than 8 bytes", () =>
    Effect.gen(function*() {
      const folder = yield* temporaryFolder()
      const notJson = join(folder, "text.safetensors")
      const bytes = new Uint8Array(8 + 5)
      new DataView(bytes.buffer).setBigUint64(0, 5n, true)
      bytes.set(new TextEncoder().encode("{oops"), 8)
      yield* Effect.promise(() => writeFile(notJson, bytes))
      expect((yield* Effect.flip(readSafetensorsHeader(notJson))).reason).toContain("not valid UTF-8 JSON")
      const tiny = join(folder, "tiny.safetensors")
      yield* Effect.promise(() => writeFile(tiny, new Uint8Array(3)))
      expect((yield* Effect.flip(readSafetensorsHeader(tiny))).reason).toContain("fewer than the 8-byte header length")
    }))
})

describe("files larger than 2 GiB", () => {
  it.scoped("reads a tensor stored past the 2 GiB mark without reading the rest (sparse file)", () =>
    Effect.gen(function*() {
      const folder = yield* temporaryFolder()
      const padding = 2 ** 31 + 4096
      const header = new TextEncoder().encode(JSON.stringify({
        padding: { dtype: "U8", shape: [padding], data_offsets: [0, padding] },
        tail: { dtype: "F32", shape: [3], data_offsets: [padding, padding + 12] }
      }))
      const file = join(folder, "big.safetensors")
      const tail = Float32Array.from([1.5, -2, 3.25])
      yield* Effect.promise(async () => {
        const handle = await open(file, "w")
        const prefix = new Uint8Array(8)
        new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true)
        await handle.write(prefix, 0, 8, 0)
        await handle.write(header, 0, header.length, 8)
        // Writing only the tail leaves a hole: the file is 2 GiB long but occupies a few blocks.
        await handle.write(new Uint8Array(tail.buffer), 0, 12, 8 + header.length + padding)
        await handle.close()
      })
      expect((yield* Effect.promise(() => stat(file))).size).toBeGreaterThan(2 ** 31)
      const reader = yield* openSafetensors(file)
      expect(reader.header.byName.get("tail")!.begin).toBeGreaterThan(2 ** 31)
      expect(Array.from(yield* reader.readFloat32("tail"))).toEqual([1.5, -2, 3.25])
    }))
})
