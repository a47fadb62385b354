// The one Node API the tests use (vitest runs them in Node), declared here rather than
// adding @types/node to the dependencies.
declare module 'node:fs' {
  export function readFileSync(path: URL, encoding: 'utf8'): string
}
