import { describe, expect, it } from "vitest"
import { withEntriesAdded, withMember } from "../../adapters/tfjs/export/json-text.ts"

/** The JSON edits of the merged export keep every byte they do not change (transformers' typed configs refuse 1 for 1.0). */
describe("JSON text edits", () => {
  const config =
    "{\n  \"attention_dropout\": 0.0,\n  \"name\": \"a \\\"quoted\\\" {brace}\",\n  \"nested\": {\"vocab_size\": 3, \"list\": [1.0, \"]\"]},\n  \"vocab_size\": 934\n}\n"

  it("replace one top-level member in place, leaving nested members of the same name and every literal as written", () => {
    const edited = withMember(config, "vocab_size", 936)
    expect(edited).toBe(config.replace("\"vocab_size\": 934", "\"vocab_size\": 936"))
    expect(JSON.parse(edited)).toMatchObject({ vocab_size: 936, nested: { vocab_size: 3 } })
  })

  it("add a missing member before the closing brace, also to an empty object", () => {
    expect(JSON.parse(withMember(config, "extra", { a: 1 }))).toMatchObject({ extra: { a: 1 }, vocab_size: 934 })
    expect(withMember("{}\n", "<SAR>", 934)).toBe("{\n  \"<SAR>\": 934\n}\n")
  })

  it("extend an object or array member, keeping its entries as written, or create it", () => {
    const tokenizer = "{\n  \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}],\n  \"decoder\": {}\n}"
    const both = withEntriesAdded(withEntriesAdded(tokenizer, "added_tokens", [{ id: 2 }], "array"), "decoder", [["2", { content: "<SAR>" }]], "object")
    expect(both).toBe("{\n  \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\"}, {\"id\":2}],\n  \"decoder\": {\"2\": {\"content\":\"<SAR>\"}}\n}")
    expect(JSON.parse(withEntriesAdded("{}", "added_tokens_decoder", [["7", true]], "object"))).toEqual({ added_tokens_decoder: { 7: true } })
  })
})
