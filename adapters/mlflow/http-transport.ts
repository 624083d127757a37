import { Effect } from "effect"
// The request body streamed from disk straight into the request (pipe), inside the async callback: never read whole.
import { createReadStream } from "node:fs"
import { request as httpRequest, type IncomingHttpHeaders } from "node:http"
import { request as httpsRequest } from "node:https"

/** A request body: bytes in memory, or a file streamed from disk (never read whole). */
export type RequestBody =
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  | { readonly kind: "file"; readonly path: string; readonly size: number }

export interface HttpRequest {
  readonly method: "GET" | "POST" | "PUT"
  readonly url: URL
  readonly headers: Readonly<Record<string, string>>
  readonly body?: RequestBody
  readonly timeoutMs: number
}

export interface HttpResponse {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
}

/** The request never got an answer: refused, reset, timed out, DNS… Worth retrying. */
export interface NetworkFailure {
  readonly _tag: "NetworkFailure"
  readonly reason: string
}

/** The body file could not be read: retrying will not help. */
export interface BodyFileFailure {
  readonly _tag: "BodyFileFailure"
  readonly file: string
  readonly reason: string
}

const describe = (error: unknown): string => {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === undefined ? error.message : `${code}: ${error.message}`
  }
  return String(error)
}

/** One HTTP exchange with node's own client; interruption aborts the request. */
export const send = (req: HttpRequest): Effect.Effect<HttpResponse, NetworkFailure | BodyFileFailure> =>
  Effect.async<HttpResponse, NetworkFailure | BodyFileFailure>((resume) => {
    let settled = false
    const finish = (effect: Effect.Effect<HttpResponse, NetworkFailure | BodyFileFailure>) => {
      if (settled) return
      settled = true
      resume(effect)
    }
    const body = req.body
    const headers: Record<string, string> = { ...req.headers }
    if (body !== undefined) {
      headers["content-length"] = String(body.kind === "bytes" ? body.bytes.byteLength : body.size)
    }
    const client = req.url.protocol === "https:" ? httpsRequest : httpRequest
    const outgoing = client(req.url, { method: req.method, headers, timeout: req.timeoutMs }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => finish(Effect.succeed({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) })))
      res.on("error", (error) => finish(Effect.fail({ _tag: "NetworkFailure", reason: describe(error) })))
    })
    outgoing.on("timeout", () => outgoing.destroy(new Error(`no answer within ${req.timeoutMs} ms`)))
    outgoing.on("error", (error) => finish(Effect.fail({ _tag: "NetworkFailure", reason: describe(error) })))
    if (body === undefined) outgoing.end()
    else if (body.kind === "bytes") outgoing.end(body.bytes)
    else {
      const stream = createReadStream(body.path)
      stream.on("error", (error) => {
        outgoing.destroy()
        finish(Effect.fail({ _tag: "BodyFileFailure", file: body.path, reason: describe(error) }))
      })
      stream.pipe(outgoing)
    }
    return Effect.sync(() => {
      settled = true
      outgoing.destroy()
    })
  })
