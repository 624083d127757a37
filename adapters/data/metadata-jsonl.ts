import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import { Effect, Schema } from "effect"
// Dirent types: FileSystem.readDirectory gives names only, and its stat follows symbolic links.
import { readdir } from "node:fs/promises"
import { isAbsolute, join, normalize, relative, sep } from "node:path"
import { fileProblem, isNotFound } from "../../framework/files/file-errors.ts"
import { type DatasetFolder, folderFile, outsideReason } from "./folder-files.ts"

/*
 * The Hugging Face "imagefolder" convention: images plus metadata.jsonl, one JSON object per line
 * with `file_name` and `text`; further `*_file_name` columns (conditioning_file_name, …) name
 * paired files. Paths are relative to the folder.
 */

export const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg", ".tif", ".tiff"]

export interface MetadataEntry {
  readonly line: number
  readonly fileName: string
  readonly text: string
  /** The paired files of the line: every other non-empty `*_file_name` column (conditioning_file_name, …) by column. */
  readonly pairedFiles: Readonly<Record<string, string>>
  /** Every `*_file_name` value of the line, file_name included. */
  readonly referencedFiles: ReadonlyArray<string>
}

export interface MetadataProblem {
  readonly line: number
  readonly reason: string
}

export interface Metadata {
  readonly present: boolean
  readonly lines: number
  readonly entries: ReadonlyArray<MetadataEntry>
  readonly problems: ReadonlyArray<MetadataProblem>
  readonly columns: ReadonlyArray<string>
}

const inside = (name: string) => {
  const normalised = normalize(name)
  return !isAbsolute(name) && normalised !== ".." && !normalised.startsWith(`..${sep}`)
}

export const METADATA_FILE = "metadata.jsonl"

/** Why metadata.jsonl, or the folder's image listing, could not be read; the reason names the file. */
export class FolderUnreadable extends Schema.TaggedError<FolderUnreadable>()("FolderUnreadable", { reason: Schema.String }) {}

const absent: Metadata = { present: false, lines: 0, entries: [], problems: [], columns: [] }

/** The folder's metadata.jsonl; one behind a link out of the folder is refused like an image (its lines would be echoed in errors). */
export const readMetadata = (folder: DatasetFolder): Effect.Effect<Metadata, FolderUnreadable, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = yield* folderFile(folder, METADATA_FILE)
    if ("outside" in file) return yield* new FolderUnreadable({ reason: `${METADATA_FILE} is ${outsideReason(file.outside)}` })
    const info = yield* fs.stat(file.path).pipe(Effect.catchIf(isNotFound, () => Effect.succeed(undefined)))
    if (info === undefined) return absent
    // Reading a FIFO would wait forever.
    if (info.type !== "File") return yield* new FolderUnreadable({ reason: `${METADATA_FILE} is not a regular file` })
    return parseMetadata(yield* fs.readFileString(file.path))
  }).pipe(Effect.catchTags({ BadArgument: unreadable, SystemError: unreadable }))

const unreadable = (error: PlatformError) => Effect.fail(new FolderUnreadable({ reason: fileProblem(error) }))

const parseMetadata = (text: string): Metadata => {
  const entries: Array<MetadataEntry> = []
  const problems: Array<MetadataProblem> = []
  const columns = new Set<string>()
  const seen = new Map<string, number>()
  const rows = text.split(/\r?\n/)
  let lines = 0
  rows.forEach((row, k) => {
    const line = k + 1
    if (row.trim().length === 0) return
    lines++
    let value: unknown
    try {
      value = JSON.parse(row)
    } catch (error) {
      problems.push({ line, reason: `not valid JSON (${(error as Error).message})` })
      return
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      problems.push({ line, reason: "must be a JSON object" })
      return
    }
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) if (key !== "file_name" && key !== "text") columns.add(key)
    const fileName = record.file_name
    if (typeof fileName !== "string" || fileName.trim().length === 0) {
      problems.push({ line, reason: "file_name must be a non-empty string" })
      return
    }
    const files = Object.entries(record).filter((entry): entry is [string, string] =>
      entry[0].endsWith("file_name") && typeof entry[1] === "string" && entry[1].length > 0
    )
    const referenced = files.map(([, v]) => v)
    const outside = referenced.find((name) => !inside(name))
    if (outside !== undefined) {
      problems.push({ line, reason: `"${outside}" must be a path inside the folder` })
      return
    }
    if (record.text !== undefined && typeof record.text !== "string") {
      problems.push({ line, reason: "text must be a string" })
      return
    }
    const earlier = seen.get(normalize(fileName))
    if (earlier !== undefined) {
      problems.push({ line, reason: `file_name "${fileName}" is already listed on line ${earlier}` })
      return
    }
    seen.set(normalize(fileName), line)
    entries.push({
      line,
      fileName,
      text: typeof record.text === "string" ? record.text : "",
      pairedFiles: Object.fromEntries(files.filter(([key]) => key !== "file_name")),
      referencedFiles: referenced
    })
  })
  return { present: true, lines, entries, problems, columns: [...columns].sort() }
}

/** Image files under `folder` (recursively, hidden entries skipped), relative, sorted. */
export const listImageFiles = (folder: string): Effect.Effect<Array<string>, FolderUnreadable> =>
  Effect.tryPromise({ try: () => imageFilesUnder(folder), catch: (error) => new FolderUnreadable({ reason: (error as Error).message }) })

const imageFilesUnder = async (folder: string): Promise<Array<string>> => {
  const out: Array<string> = []
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true })
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue
      const path = join(dir, entry.name)
      if (entry.isDirectory()) await walk(path)
      else if (IMAGE_EXTENSIONS.some((ext) => entry.name.toLowerCase().endsWith(ext))) out.push(relative(folder, path))
    }
  }
  await walk(folder)
  return out.sort()
}
