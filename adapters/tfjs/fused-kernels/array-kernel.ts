import { getKernel, registerKernel, util, type KernelBackend, type KernelFunc, type NamedAttrMap, type TensorInfo } from "@tensorflow/tfjs-core"
import type { BackendWasm } from "@tensorflow/tfjs-backend-wasm"

/**
 * A kernel written as one loop over float32 arrays, for work that tfjs would spread over dozens of
 * small operations (each a kernel call, a tape entry, a scalar upload): normalisation layers and the
 * optimiser's per-parameter updates. On wasm it reads and writes the backend's heap in place; on cpu
 * the backend's own arrays; on any other backend (tfjs-node) it copies through readSync / write.
 */
export interface ArrayKernel<Inputs extends ReadonlyArray<string>, Outputs extends ReadonlyArray<string>> {
  readonly name: string
  /** Input names, in the order `compute` receives them. */
  readonly inputs: Inputs
  /** Output names, in the order `outputShapes` gives their shapes and `compute` receives them. */
  readonly outputs: Outputs
  readonly outputShapes: (inputs: Each<Inputs, TensorInfo>, attrs: NamedAttrMap) => Each<Outputs, ReadonlyArray<number>>
  readonly compute: (inputs: Each<Inputs, Float32Array>, outputs: Each<Outputs, Float32Array>, attrs: NamedAttrMap) => void
}

/** One `T` per name, as a tuple of the names' length (so `compute` destructures without `undefined`). */
type Each<Names extends ReadonlyArray<string>, T> = { readonly [K in keyof Names]: T }

// Any kernel, for the functions below that only pass its arrays along in their declared order.
type AnyArrayKernel = ArrayKernel<ReadonlyArray<string>, ReadonlyArray<string>>

const BACKENDS = ["wasm", "cpu", "tensorflow"] as const

const orderedInputs = (kernel: AnyArrayKernel, named: Record<string, TensorInfo>): Array<TensorInfo> =>
  kernel.inputs.map((name) => {
    const info = named[name]
    if (info === undefined) throw new Error(`${kernel.name}: input "${name}" is missing`)
    if (info.dtype !== "float32") throw new Error(`${kernel.name}: input "${name}" is ${info.dtype}, not float32`)
    return info
  })

/** The engine hands an array back as an array: a kernel of one output returns it alone. */
const single = (outs: Array<TensorInfo>): TensorInfo | Array<TensorInfo> => (outs.length === 1 ? outs[0]! : outs)

const onWasm = (kernel: AnyArrayKernel): KernelFunc => ({ inputs, backend, attrs = {} }) => {
  const wasm = backend as BackendWasm
  const ins = orderedInputs(kernel, inputs as Record<string, TensorInfo>)
  // Outputs first: allocating may grow the heap, which would detach views taken before.
  const outs = kernel.outputShapes(ins, attrs).map((shape) => wasm.makeOutput(shape.slice(), "float32"))
  const heap = (info: TensorInfo) => wasm.typedArrayFromHeap(info) as Float32Array
  kernel.compute(ins.map(heap), outs.map(heap), attrs)
  return single(outs)
}

const anywhere = (kernel: AnyArrayKernel): KernelFunc => ({ inputs, backend, attrs = {} }) => {
  const b = backend as KernelBackend
  const ins = orderedInputs(kernel, inputs as Record<string, TensorInfo>)
  const shapes = kernel.outputShapes(ins, attrs)
  const outs = shapes.map((shape) => new Float32Array(util.sizeFromShape(shape.slice())))
  kernel.compute(ins.map((info) => b.readSync(info.dataId) as Float32Array), outs, attrs)
  return single(outs.map((values, i): TensorInfo => ({ dataId: b.write(values, shapes[i]!.slice(), "float32"), shape: shapes[i]!.slice(), dtype: "float32" })))
}

/** Registers `kernel` on the wasm, cpu and tensorflow backends (once: a second call changes nothing). */
export const registerArrayKernel = <const Inputs extends ReadonlyArray<string>, const Outputs extends ReadonlyArray<string>>(
  kernel: ArrayKernel<Inputs, Outputs>
): void => {
  for (const backendName of BACKENDS) {
    if (getKernel(kernel.name, backendName) !== undefined) continue
    registerKernel({
      kernelName: kernel.name,
      backendName,
      kernelFunc: backendName === "wasm" ? onWasm(kernel as unknown as AnyArrayKernel) : anywhere(kernel as unknown as AnyArrayKernel)
    })
  }
}
