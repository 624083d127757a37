import { Schema } from "effect"

/** A trained model cannot be exported in the asked format (nothing of that kind in it, output in the way). */
export class ExportError extends Schema.TaggedError<ExportError>()("ExportError", {
  format: Schema.String,
  reason: Schema.String,
  /** The failure of the file operation, when one failed. */
  cause: Schema.optional(Schema.Defect)
}) {
  override get message() {
    return `--format ${this.format}: ${this.reason}`
  }
}
