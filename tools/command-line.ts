/** `--name value` from this process's arguments, else `fallback`; a flag given without its value is an error. */
export const option = (name: string, fallback: string): string => {
  const at = process.argv.indexOf(`--${name}`)
  if (at < 0) return fallback
  const value = process.argv[at + 1]
  if (value === undefined) throw new Error(`--${name} needs a value`)
  return value
}
