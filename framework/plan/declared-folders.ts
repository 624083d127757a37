import type { FolderFingerprint } from "../declaration/folder-fingerprint.ts"
import { type StepConfigs, type StepKind, validationDataRole } from "./step.ts"

/** A folder a step reads straight from the declaration (not from another step's output). */
export interface DeclaredFolder {
  /** The declaration field, for messages: `data.path`, `evaluate.reference.path`, `base.path`, … */
  readonly field: string
  /** As written in the declaration (relative to the declaration file, or absolute). */
  readonly path: string
  readonly fingerprint: FolderFingerprint
}

/**
 * What a step reads of the declaration: its kind and the fields it hashes (a plan step, or one being
 * compiled, which has no id yet: only messages need the id).
 */
type StepFields = { [K in StepKind]: { readonly kind: K; readonly config: StepConfigs[K]; readonly id?: string } }[StepKind]

/** The declared folders a step reads; their fingerprints are part of its content key. */
export const declaredFolders = (step: StepFields): ReadonlyArray<DeclaredFolder> => {
  switch (step.kind) {
    case "prepare-data": {
      const { dataset } = step.config
      // The step's role (the end of its id) says which declared dataset it prepares.
      const field = step.id?.endsWith("/reference") === true
        ? "evaluate.reference.path"
        : step.id?.endsWith(`/${validationDataRole}`) === true
        ? "train.validationLoss.data.path"
        : "data.path"
      return dataset._tag === "image-folder" ? [{ field, path: dataset.path, fingerprint: dataset.fingerprint ?? "metadata" }] : []
    }
    // Architecture folders hold configs and tokenizer files, no weights (2.8 MB for SDXL's): hashing their
    // content costs little, and keeps the trainings made from them when a config is saved unchanged.
    case "init-model":
      return [{ field: "base.architecture", path: step.config.base.architecture, fingerprint: "content" }]
    case "train-clip":
      return [{ field: "architecture", path: step.config.architecture, fingerprint: "content" }]
    case "merge-model":
    case "encode-latents":
    case "encode-text":
    case "train":
    case "generate": {
      // Other bases are made by init-model / merge-model steps.
      const { base } = step.config
      return base._tag === "diffusers" ? [{ field: "base.path", path: base.path, fingerprint: base.fingerprint ?? "metadata" }] : []
    }
    case "evaluate": {
      const { alignment } = step.config.evaluate
      if (alignment === undefined) return []
      const judge = alignment.promptFollowing
      return [
        { field: "evaluate.alignment.clip", path: alignment.clip, fingerprint: "metadata" },
        ...(judge === undefined ? [] : [{ field: "evaluate.alignment.promptFollowing.clip", path: judge.clip, fingerprint: "metadata" as const }])
      ]
    }
    case "report":
      return []
  }
}

/** How a folder's fingerprint is looked up: its declared path and mode. */
export const fingerprintKey = (folder: Pick<DeclaredFolder, "path" | "fingerprint">) => `${folder.fingerprint}:${folder.path}`

/** Each declared folder's fingerprint, by `fingerprintKey`. */
export type FolderFingerprints = ReadonlyMap<string, string>
