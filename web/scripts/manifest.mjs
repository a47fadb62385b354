// Writes gateway/webui/manifest.json: the hash of the sources the build came from, so
// tests/web/test_build.py fails when the committed build is stale (like the codegen drift
// test). The same rule is in tests/web/test_build.py: every file under web/ but
// node_modules/ and tests/, sorted by POSIX path; sha256 over "path\0sha256(content)\n".
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const web = fileURLToPath(new URL('..', import.meta.url))
const out = fileURLToPath(new URL('../../gateway/webui', import.meta.url))
const SKIP = new Set(['node_modules', 'tests'])

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (dir === web.replace(/[\\/]$/, '') && SKIP.has(name)) return []
    if (SKIP.has(relative(web, path))) return []
    return statSync(path).isDirectory() ? walk(path) : [path]
  })
}

const files = walk(web.replace(/[\\/]$/, ''))
  .map((path) => relative(web, path).split(sep).join('/'))
  .sort()
const digest = createHash('sha256')
for (const file of files) {
  const content = createHash('sha256').update(readFileSync(join(web, file))).digest('hex')
  digest.update(`${file}\0${content}\n`)
}
const built = readdirSync(join(out, 'assets')).sort()
writeFileSync(
  join(out, 'manifest.json'),
  JSON.stringify({ source_sha256: digest.digest('hex'), sources: files.length, assets: built }, null, 1) + '\n',
)
