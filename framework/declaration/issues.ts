import { Option, ParseResult, SchemaAST } from "effect"
import type { DeclarationIssue } from "./cross-field-rules.ts"

/*
 * Validation errors as `<json path>: <rule>` lines. Where a field accepts several forms (a union)
 * and the value fits none, Effect reports why it fails every form; only the form the user meant
 * is kept: `_tag` names a tagged form (frozen(), lora(…)), an object without one means the
 * untagged form ({ textEncoder, textEncoder2 }), and a plain value the form that describes itself.
 */

type Issue = ParseResult.ParseIssue

const list = <A>(items: A | ReadonlyArray<A>): ReadonlyArray<A> => (Array.isArray(items) ? items : [items as A])

/** The keyed issues directly under a form's issue (through wrappers that add no key). */
const pointers = (issue: Issue): ReadonlyArray<ParseResult.Pointer> => {
  switch (issue._tag) {
    case "Pointer":
      return [issue]
    case "Composite":
      return list(issue.issues).flatMap(pointers)
    case "Refinement":
    case "Transformation":
      return pointers(issue.issue)
    default:
      return []
  }
}

const isTagPointer = (pointer: ParseResult.Pointer) => list(pointer.path).length === 1 && list(pointer.path)[0] === "_tag"

/** The form does not know `_tag`: it is not the tagged form the value names. */
const rejectsTag = (issue: Issue) => pointers(issue).some((p) => isTagPointer(p) && p.issue._tag === "Unexpected")

/** The form failed only for want of a `_tag`: the value, having none, means another form. */
const onlyMissesTag = (issue: Issue) => {
  const found = pointers(issue)
  return found.length > 0 && found.every((p) => isTagPointer(p) && p.issue._tag === "Missing")
}

/** The form has its own message ("must be one of …", "must be frozen(), …"). */
const describesItself = (issue: Issue) => (issue._tag === "Type" || issue._tag === "Composite") && Option.isSome(SchemaAST.getMessageAnnotation(issue.ast))

/** `forms` filtered by `keep`, unless that would leave none. */
const prefer = (forms: ReadonlyArray<Issue>, keep: (issue: Issue) => boolean) => {
  const kept = forms.filter(keep)
  return kept.length > 0 ? kept : forms
}

const meantForms = (value: unknown, forms: ReadonlyArray<Issue>): ReadonlyArray<Issue> => {
  // `undefined` is accepted where a field is optional; a user never meant it for a value they wrote.
  const written = prefer(forms, (f) => !(f._tag === "Type" && SchemaAST.isUndefinedKeyword(f.ast)))
  if (typeof value !== "object" || value === null || Array.isArray(value)) return prefer(written, describesItself)
  const objects = prefer(written, (f) => f._tag !== "Type")
  return "_tag" in value ? prefer(objects, (f) => !rejectsTag(f)) : prefer(objects, (f) => !onlyMissesTag(f))
}

const narrowUnions = (issue: Issue): Issue => {
  switch (issue._tag) {
    case "Pointer":
      return new ParseResult.Pointer(issue.path, issue.actual, narrowUnions(issue.issue))
    case "Refinement":
      return new ParseResult.Refinement(issue.ast, issue.actual, issue.kind, narrowUnions(issue.issue))
    case "Transformation":
      return new ParseResult.Transformation(issue.ast, issue.actual, issue.kind, narrowUnions(issue.issue))
    case "Composite": {
      const members = list(issue.issues)
      const kept = (SchemaAST.isUnion(issue.ast) ? meantForms(issue.actual, members) : members).map(narrowUnions)
      const issues = (kept.length === 1 ? kept[0] : kept) as ParseResult.SingleOrNonEmpty<Issue>
      return new ParseResult.Composite(issue.ast, issue.actual, issues, issue.output)
    }
    default:
      return issue
  }
}

/** One issue per problem, with its path. */
export const declarationIssues = (error: ParseResult.ParseError): Array<DeclarationIssue> =>
  ParseResult.ArrayFormatter.formatIssueSync(narrowUnions(error.issue)).map((issue) => ({
    path: issue.path.map((p) => (typeof p === "number" ? p : String(p))),
    message: issue.message
  }))
