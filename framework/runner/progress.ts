import { Context, Effect, Either, Layer, Schema } from "effect"

/**
 * How a run tells the user what is happening: a live line per running step on a terminal
 * (step, rate, ETA), plain timestamped log lines otherwise (CI, files, pipes).
 */
export interface StepMeter {
  /** `done` of `total` units (steps, images, files) so far. */
  readonly update: (done: number, total: number, unit: string) => Effect.Effect<void>
  readonly log: (message: string) => Effect.Effect<void>
}

export class Progress extends Context.Tag("sardine/Progress")<Progress, {
  readonly begin: (id: string, label: string) => Effect.Effect<StepMeter>
  readonly end: (id: string, outcome: string) => Effect.Effect<void>
  /** A line that is not about one step. */
  readonly note: (message: string) => Effect.Effect<void>
}>() {}

interface Running {
  readonly label: string
  readonly started: number
  done: number
  total: number
  unit: string
  lastLogged: number
  /** Rate from the first update, so time spent loading before it does not skew the ETA. */
  firstUpdate?: { readonly at: number; readonly done: number }
}

const duration = (ms: number): string => {
  if (!Number.isFinite(ms) || ms < 0) return "?"
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
}

const describe = (r: Running, now: number): string => {
  if (r.total <= 0) return `${r.label}  ${duration(now - r.started)}`
  const pct = Math.floor((100 * r.done) / r.total)
  let rate = ""
  let eta = ""
  if (r.firstUpdate !== undefined && r.done > r.firstUpdate.done && now > r.firstUpdate.at) {
    const perSecond = ((r.done - r.firstUpdate.done) * 1000) / (now - r.firstUpdate.at)
    rate = perSecond >= 1 ? `  ${perSecond.toFixed(1)} ${r.unit}/s` : `  ${(1 / perSecond).toFixed(1)} s/${r.unit}`
    eta = `  ETA ${duration(((r.total - r.done) / perSecond) * 1000)}`
  }
  return `${r.label}  ${r.done}/${r.total} ${r.unit} (${pct}%)${rate}${eta}`
}

const stamp = () => new Date().toISOString().slice(11, 19)

const track = (running: Map<string, Running>, id: string, done: number, total: number, unit: string, now: number) => {
  const r = running.get(id)
  if (r === undefined) return undefined
  if (r.firstUpdate === undefined) r.firstUpdate = { at: now, done }
  r.done = done
  r.total = total
  r.unit = unit
  return r
}

/** Plain lines, at most one progress line per step every `everyMs`. */
export const plainProgress = (write: (line: string) => void, everyMs = 10_000) =>
  Layer.sync(Progress, () => {
    const running = new Map<string, Running>()
    const line = (text: string) => write(`[${stamp()}] ${text}\n`)
    return {
      begin: (id, label) =>
        Effect.sync(() => {
          const now = Date.now()
          running.set(id, { label, started: now, done: 0, total: 0, unit: "", lastLogged: now })
          line(`start  ${label}`)
          return {
            update: (done, total, unit) =>
              Effect.sync(() => {
                const now = Date.now()
                const r = track(running, id, done, total, unit, now)
                if (r !== undefined && (now - r.lastLogged >= everyMs || done === total)) {
                  r.lastLogged = now
                  line(describe(r, now))
                }
              }),
            log: (message) => Effect.sync(() => line(`${label}: ${message}`))
          }
        }),
      end: (id, outcome) =>
        Effect.sync(() => {
          const r = running.get(id)
          running.delete(id)
          line(`${outcome}  ${r?.label ?? id}${r === undefined ? "" : `  (${duration(Date.now() - r.started)})`}`)
        }),
      note: (message) => Effect.sync(() => line(message))
    }
  })

/** Live lines redrawn in place below the log (ANSI), at most 10 times a second. */
export const liveProgress = (stream: NodeJS.WriteStream) =>
  Layer.sync(Progress, () => {
    const running = new Map<string, Running>()
    let drawn = 0
    let lastDraw = 0
    const clear = () => {
      if (drawn > 0) stream.write(`\x1b[${drawn}A\x1b[0J`)
      drawn = 0
    }
    const draw = () => {
      const now = Date.now()
      lastDraw = now
      const width = stream.columns ?? 100
      const lines = [...running.values()].map((r) => `  ⋯ ${describe(r, now)}`.slice(0, width - 1))
      for (const l of lines) stream.write(`${l}\n`)
      drawn = lines.length
    }
    const above = (text: string) => {
      clear()
      stream.write(`${text}\n`)
      draw()
    }
    return {
      begin: (id, label) =>
        Effect.sync(() => {
          running.set(id, { label, started: Date.now(), done: 0, total: 0, unit: "", lastLogged: 0 })
          clear()
          draw()
          return {
            update: (done, total, unit) =>
              Effect.sync(() => {
                const now = Date.now()
                track(running, id, done, total, unit, now)
                if (now - lastDraw >= 100) {
                  clear()
                  draw()
                }
              }),
            log: (message) => Effect.sync(() => above(`  ${label}: ${message}`))
          }
        }),
      end: (id, outcome) =>
        Effect.sync(() => {
          const r = running.get(id)
          running.delete(id)
          above(`${outcome.padEnd(8)} ${r?.label ?? id}${r === undefined ? "" : `  (${duration(Date.now() - r.started)})`}`)
        }),
      note: (message) => Effect.sync(() => above(message))
    }
  })

/**
 * What a step running in a child process tells the executor that started it, one line each (see
 * eventProgress): its progress, its log lines, and lines not about the step (locks, tracking); a step
 * worker (`sardine step-worker`) also how each step it was asked for ended.
 */
export const ProgressEvent = Schema.Union(
  Schema.Struct({ event: Schema.Literal("update"), done: Schema.Number, total: Schema.Number, unit: Schema.String }),
  Schema.Struct({ event: Schema.Literal("log"), message: Schema.String }),
  Schema.Struct({ event: Schema.Literal("note"), message: Schema.String }),
  Schema.Struct({ event: Schema.Literal("finished"), step: Schema.String, status: Schema.Literal("ran", "cached", "failed"), message: Schema.String })
)
export type ProgressEvent = typeof ProgressEvent.Type

/** Marks a progress event among a child's other output lines (errors, warnings of libraries). */
const eventMark = "sardine-progress "

/** A progress event as the line a child writes. */
export const eventLine = (event: ProgressEvent) => `${eventMark}${JSON.stringify(event)}\n`
const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(ProgressEvent))

/** The event a line of a child's output carries, or undefined for any other line. */
export const progressEventOf = (line: string): ProgressEvent | undefined => {
  if (!line.startsWith(eventMark)) return undefined
  return Either.getOrUndefined(decodeEvent(line.slice(eventMark.length)))
}

/**
 * Progress as event lines for a parent process (`SARDINE_PROGRESS=events`): updates at most every
 * `everyMs` a step (and its last one), every log line and note. The parent begins and ends the step itself.
 */
export const eventProgress = (write: (line: string) => void, everyMs = 500) =>
  Layer.sync(Progress, () => {
    const emit = (event: ProgressEvent) => write(eventLine(event))
    return {
      begin: () =>
        Effect.sync(() => {
          let last = 0
          return {
            update: (done, total, unit) =>
              Effect.sync(() => {
                const now = Date.now()
                if (now - last < everyMs && done !== total) return
                last = now
                emit({ event: "update", done, total, unit })
              }),
            log: (message) => Effect.sync(() => emit({ event: "log", message }))
          }
        }),
      end: () => Effect.void,
      note: (message) => Effect.sync(() => emit({ event: "note", message }))
    }
  })

/**
 * Live lines on an interactive terminal, plain lines elsewhere (CI=true forces plain); event lines
 * for the executor that started this process when SARDINE_PROGRESS=events.
 */
export const progressFor = (stream: NodeJS.WriteStream) =>
  process.env.SARDINE_PROGRESS === "events"
    ? eventProgress((l) => stream.write(l))
    : stream.isTTY === true && process.env.CI !== "true"
    ? liveProgress(stream)
    : plainProgress((l) => stream.write(l))
