import { Context, Effect, Layer } from "effect"

/**
 * A layer for `tag` whose real service is built by `load` on first use, and once. Heavy adapters
 * (the tfjs engine, onnxruntime, the report renderer) are then imported and started only by the
 * commands that use them; the others start fast. Every member of the service must be a function
 * returning an Effect, or an Effect itself (listed in `effects`).
 */
export const lazyLayer = <I, S extends object, E, R>(
  tag: Context.Tag<I, S>,
  load: Effect.Effect<S, E, R>,
  effects: ReadonlyArray<keyof S & string> = []
): Layer.Layer<I, never, R> =>
  Layer.effect(
    tag,
    Effect.gen(function*() {
      const context = yield* Effect.context<R>()
      const service = yield* Effect.cached(Effect.provide(load, context))
      const member = (real: S, name: string) => (real as Record<string, unknown>)[name]
      return new Proxy({} as S, {
        get: (_, name: string) =>
          (effects as ReadonlyArray<string>).includes(name)
            ? Effect.flatMap(service, (real) => member(real, name) as Effect.Effect<unknown, unknown, unknown>)
            : (...args: Array<unknown>) =>
              Effect.flatMap(service, (real) => (member(real, name) as (...a: Array<unknown>) => Effect.Effect<unknown, unknown, unknown>)(...args))
      })
    })
  )
