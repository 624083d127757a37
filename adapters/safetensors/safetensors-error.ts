import { Schema } from "effect"

/** A safetensors file that cannot be read or written; names the file and, when known, the tensor. */
export class SafetensorsError extends Schema.TaggedError<SafetensorsError>()("SafetensorsError", {
  file: Schema.String,
  tensor: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message() {
    return `${this.file}: ${this.tensor === undefined ? "" : `tensor "${this.tensor}": `}${this.reason}`
  }
}
