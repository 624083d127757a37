/** `{token}` is the experiment's learned token, `{caption}` the file's own caption (or the scene description). */
export const applyCaptionTemplate = (template: string, caption: string, token: string | undefined): string =>
  template.replaceAll("{token}", token ?? "").replaceAll("{caption}", caption)

/** A template that inserts the learned token needs one. */
export const checkTemplate = (template: string, token: string | undefined): string | undefined =>
  template.includes("{token}") && (token === undefined || token.length === 0)
    ? `captionTemplate "${template}" inserts {token}, but no learned token was given`
    : undefined
