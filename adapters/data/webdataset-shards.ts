// Dirent types without following links (a `**` walk must not loop): FileSystem.readDirectory gives names only.
import { readdir, stat } from "node:fs/promises"
import { isAbsolute, join, resolve } from "node:path"

/*
 * Which shard files a declaration names: WebDataset's brace notation (`shard-{00000..00099}.tar`,
 * `{train,val}`) and shell globs (`*`, `?`, `[…]`, `**` for any depth), each pattern relative to
 * the root, the files sorted within a pattern and the patterns kept in their declared order.
 */

/** Every string a brace pattern stands for: `{a,b}` alternatives and `{M..N}` ranges (zero-padded as written). */
export const expandBraces = (pattern: string): Array<string> => {
  const open = pattern.indexOf("{")
  if (open === -1) return [pattern]
  let depth = 0
  let close = -1
  for (let i = open; i < pattern.length; i++) {
    if (pattern[i] === "{") depth++
    else if (pattern[i] === "}" && --depth === 0) {
      close = i
      break
    }
  }
  if (close === -1) return [pattern]
  const head = pattern.slice(0, open)
  const body = pattern.slice(open + 1, close)
  const tails = expandBraces(pattern.slice(close + 1))
  const range = /^(-?\d+)\.\.(-?\d+)$/.exec(body)
  let choices: Array<string>
  if (range !== null) {
    // Both groups are mandatory: a match has them.
    const [fromText, toText] = [range[1]!, range[2]!]
    const [from, to] = [Number(fromText), Number(toText)]
    const width = fromText.length === toText.length ? fromText.length : 0
    const step = from <= to ? 1 : -1
    choices = Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => String(from + i * step).padStart(width, "0"))
  } else {
    // Split on commas outside nested braces.
    choices = []
    let part = ""
    let nested = 0
    for (const c of body) {
      if (c === "," && nested === 0) {
        choices.push(part)
        part = ""
        continue
      }
      if (c === "{") nested++
      if (c === "}") nested--
      part += c
    }
    choices.push(part)
    if (choices.length === 1) return tails.map((t) => `${head}{${body}}${t}`)
    choices = choices.flatMap(expandBraces)
  }
  return choices.flatMap((c) => tails.map((t) => `${head}${c}${t}`))
}

const hasGlob = (segment: string) => /[*?[]/.test(segment)

const segmentPattern = (segment: string): RegExp => {
  let source = ""
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!
    if (c === "*") source += "[^/]*"
    else if (c === "?") source += "[^/]"
    else if (c === "[") {
      const end = segment.indexOf("]", i + 1)
      if (end === -1) source += "\\["
      else {
        const set = segment.slice(i + 1, end)
        source += `[${set.startsWith("!") ? `^${set.slice(1)}` : set}]`
        i = end
      }
    } else source += c.replace(/[.+^${}()|\\]/g, "\\$&")
  }
  return new RegExp(`^${source}$`)
}

/** A path that is not there, or runs through a file: a pattern that matches nothing there. Any other error (no permission) is the caller's. */
const absent = (error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code
  return code === "ENOENT" || code === "ENOTDIR"
}

const entries = (dir: string) =>
  readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    if (absent(error)) return []
    throw error
  })

/** The files under `dir` matching the remaining path segments (`**` matches any number of folders). */
const walk = async (dir: string, segments: ReadonlyArray<string>): Promise<Array<string>> => {
  const [segment, ...rest] = segments
  if (segment === undefined) return []
  if (segment === "**") {
    const here = await walk(dir, rest)
    const deeper = await Promise.all(
      (await entries(dir)).filter((e) => e.isDirectory()).map((e) => walk(join(dir, e.name), segments))
    )
    return [...here, ...deeper.flat()]
  }
  if (!hasGlob(segment)) {
    const path = join(dir, segment)
    if (rest.length > 0) return walk(path, rest)
    const info = await stat(path).catch((error: unknown) => {
      if (absent(error)) return undefined
      throw error
    })
    return info?.isFile() ? [path] : []
  }
  const matcher = segmentPattern(segment)
  const matches = (await entries(dir)).filter((e) => matcher.test(e.name) && !e.name.startsWith("."))
  const found = await Promise.all(
    matches.map(async (e) => {
      const path = join(dir, e.name)
      if (rest.length > 0) return e.isDirectory() ? walk(path, rest) : []
      return e.isFile() ? [path] : []
    })
  )
  return found.flat()
}

export interface ShardList {
  readonly files: ReadonlyArray<string>
  /** Patterns (after brace expansion) that matched no file. */
  readonly unmatched: ReadonlyArray<string>
}

/** The shard files of `patterns`, relative paths resolved against `root`; no file appears twice. */
export const listShards = async (patterns: ReadonlyArray<string>, root: string): Promise<ShardList> => {
  const files: Array<string> = []
  const unmatched: Array<string> = []
  const seen = new Set<string>()
  for (const pattern of patterns.flatMap(expandBraces)) {
    const absolute = isAbsolute(pattern) ? pattern : resolve(root, pattern)
    const [first, ...segments] = absolute.split("/")
    const found = (await walk(first || "/", segments)).sort()
    if (found.length === 0) unmatched.push(pattern)
    for (const file of found) {
      if (!seen.has(file)) {
        seen.add(file)
        files.push(file)
      }
    }
  }
  return { files, unmatched }
}
