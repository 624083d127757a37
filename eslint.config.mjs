// The linter: ESLint's and typescript-eslint's recommended rules (syntax-only, no type information, so it
// runs in seconds), with Effect's conventions for unused names and Array.push. Formatting is dprint's job
// (dprint.json, `npm run format`), not a lint rule. See CONTRIBUTING.md.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  {
    ignores: [
      "node_modules/**",
      ".venv*/**",
      "test/fixtures/**",
      "experiments/demo/base/**",
      "experiments/demo/sar-clip/**",
      ".sardine/**",
      "mlruns/**",
      "test-output/**",
      "bench/.work/**"
    ]
  },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a name kept on purpose (a destructured field dropped, a callback's unused argument).
      "@typescript-eslint/no-unused-vars": ["error", {
        argsIgnorePattern: "^_",
        varsIgnorePattern: "^_",
        caughtErrorsIgnorePattern: "^_",
        destructuredArrayIgnorePattern: "^_",
        ignoreRestSiblings: true
      }],
      // Spreading a large array into push overflows the stack.
      "no-restricted-syntax": ["error", {
        selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
        message: "Do not spread arguments into Array.push (a large array overflows the stack): loop, or concat."
      }],
      "object-shorthand": "error",
      // Aligned output is matched with its literal spaces.
      "no-regex-spaces": "off"
    }
  },
  {
    // Untyped JSON goldens and reference outputs are read as `any` in tests, tools and benchmarks.
    files: ["test/**", "tools/**", "bench/**"],
    rules: { "@typescript-eslint/no-explicit-any": "off" }
  },
  {
    // Scripts evaluated inside the browser page by the report tests.
    files: ["**/*.browser.js"],
    languageOptions: { globals: { document: "readonly", getComputedStyle: "readonly", window: "readonly" } }
  },
  {
    // The error thrown here drops the caught one; its owner (branch reliability-data) adds the cause.
    files: ["adapters/data/synthetic/synthetic-writer.ts"],
    rules: { "preserve-caught-error": "warn" }
  }
)
