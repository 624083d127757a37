// The linter: ESLint's and typescript-eslint's recommended rules (syntax-only, no type information, so it
// runs in seconds), with Effect's conventions for unused names and Array.push. Formatting is dprint's job
// (dprint.json, `npm run format`), not a lint rule. See CONTRIBUTING.md.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

// Spreading a large array into push overflows the stack.
const noSpreadIntoPush = {
  selector: "CallExpression[callee.property.name='push'] > SpreadElement.arguments",
  message: "Do not spread arguments into Array.push (a large array overflows the stack): loop, or concat."
}

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
      "no-restricted-syntax": ["error", noSpreadIntoPush],
      "object-shorthand": "error",
      // Aligned output is matched with its literal spaces.
      "no-regex-spaces": "off"
    }
  },
  {
    // File IO goes through @effect/platform's FileSystem (provided by bin/, or by an adapter for itself): its
    // failures are PlatformErrors in the error channel, where a rejected Effect.promise would be a defect.
    files: ["framework/**", "adapters/**", "reports/**"],
    rules: {
      "no-restricted-imports": ["error", {
        paths: ["node:fs", "node:fs/promises", "fs", "fs/promises"].map((name) => ({
          name,
          message: "Use FileSystem from @effect/platform (errors as PlatformError, absent files via framework/files/if-present.ts)."
        }))
      }],
      // Restated with the general rule's selector: a file's setting of a rule replaces the earlier one.
      "no-restricted-syntax": ["error", noSpreadIntoPush, {
        selector: "CallExpression[callee.object.name='Effect'][callee.property.name='promise']",
        message:
          "Effect.promise turns a rejection into a defect: use FileSystem from @effect/platform for files, Effect.tryPromise with a typed error otherwise."
      }]
    }
  },
  {
    // What FileSystem cannot do (positional reads, entry types without following links, streams piped into a
    // request, sub-millisecond mtimes) or code outside Effect: each file says why beside its node:fs import.
    files: [
      "framework/steps/prepared-dataset.ts",
      "adapters/data/metadata-jsonl.ts",
      "adapters/data/webdataset-shards.ts",
      "adapters/data/webdataset-tar.ts",
      "adapters/images/image-header.ts",
      "adapters/mlflow/artifact-files.ts",
      "adapters/mlflow/http-transport.ts",
      "adapters/mlflow/push.ts",
      "adapters/safetensors/safetensors-reader.ts",
      "adapters/torch/python-environment.ts"
    ],
    rules: { "no-restricted-imports": "off" }
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
  }
)
