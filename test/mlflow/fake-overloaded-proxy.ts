import { createServer, type Server } from "node:http"

/*
 * fake-overloaded-proxy: MLflow never answers 429 and cannot be made to answer 503 on demand, so this
 * proxy in front of the real server refuses the first requests as an overloaded server or gateway would,
 * then forwards everything. It also records what each request carried (with no refusals it only observes).
 */
export interface Seen {
  readonly at: number
  readonly method: string
  readonly path: string
  readonly status: number
  readonly authorization: string | undefined
}

export const startFakeOverloadedProxy = async (
  target: string,
  refusals: Array<{ status: number; retryAfter?: number }>
) => {
  const seen: Array<Seen> = []
  const server: Server = createServer(async (req, res) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const refusal = refusals.shift()
    const record = (status: number) =>
      seen.push({ at: Date.now(), method: req.method ?? "", path: req.url ?? "", status, authorization: req.headers.authorization })
    if (refusal !== undefined) {
      record(refusal.status)
      res.writeHead(refusal.status, refusal.retryAfter === undefined ? {} : { "retry-after": String(refusal.retryAfter) })
      res.end(refusal.status === 429 ? "Too Many Requests" : "<html>Service Unavailable</html>")
      return
    }
    const answer = await fetch(`${target}${req.url}`, {
      ...(req.method === undefined ? {} : { method: req.method }),
      headers: { "content-type": req.headers["content-type"] ?? "application/json" },
      ...(req.method === "GET" ? {} : { body: Buffer.concat(chunks) })
    })
    record(answer.status)
    res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json" })
    res.end(Buffer.from(await answer.arrayBuffer()))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return { uri: `http://127.0.0.1:${port}`, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) }
}
