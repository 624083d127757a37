import * as tf from "@tensorflow/tfjs-core"
import { setThreadsCount } from "@tensorflow/tfjs-backend-wasm"
import { createRequire } from "node:module"
import type { Worker as NodeWorker, WorkerOptions } from "node:worker_threads"

const require = createRequire(import.meta.url)

/**
 * tfjs-backend-wasm 4.22 ships a threaded SIMD build (XNNPACK on a pthread pool) but never loads it
 * under Node (tfjs issue 3830). Three things stand in the way, each undone here only while the
 * backend initialises:
 * - the WASM_HAS_MULTITHREAD_SUPPORT flag answers false whenever it runs on Node;
 * - Emscripten starts its pool with `new Worker(<blob: URL>)`, which Node's Worker refuses, and then
 *   posts the main script to each worker as a Blob, which the worker cannot import: the worker
 *   source is given as code instead, and the main script as the path of the glue file;
 * - the backend caps the pool at half the logical cores (it assumes two hyper-threads per core),
 *   so it is shown twice the cores.
 */
export const withWasmThreads = async <A>(threads: number, initialise: () => Promise<A>): Promise<A> => {
  const workerThreads = require("node:worker_threads") as { Worker: typeof NodeWorker }
  const os = require("node:os") as { cpus: () => Array<unknown> }
  const { wasmWorkerContents } = require("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js") as { wasmWorkerContents: string }
  const gluePath = require.resolve("@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js")
  // The worker source is a template literal whose "\n" escapes became line breaks; tfjs escapes them back the same way.
  const workerSource = wasmWorkerContents.replace(/\n/g, "\\n")
  const NodeWorkerClass = workerThreads.Worker
  const cpus = os.cpus
  class PthreadWorker extends NodeWorkerClass {
    constructor(url: string | URL, options?: WorkerOptions) {
      if (typeof url === "string" && url.startsWith("blob:")) super(workerSource, { ...options, eval: true })
      else super(url, options)
    }
    override postMessage(message: unknown, transfer?: ReadonlyArray<never>): void {
      const load = message as { cmd?: string; urlOrBlob?: unknown }
      super.postMessage(load?.cmd === "load" && typeof load.urlOrBlob !== "string" ? { ...load, urlOrBlob: gluePath } : message, transfer)
    }
  }
  tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", threads > 1)
  setThreadsCount(threads)
  workerThreads.Worker = PthreadWorker
  os.cpus = () => [...cpus(), ...cpus()]
  try {
    return await initialise()
  } finally {
    workerThreads.Worker = NodeWorkerClass
    os.cpus = cpus
  }
}
