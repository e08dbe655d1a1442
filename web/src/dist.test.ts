// @vitest-environment node
// The committed web/dist is what these sources build to: the engine embeds dist, so a change to src/ without
// `make ui` would ship the old console. The build is deterministic, so the files must match byte for byte.
// Vite runs in its own process, as `vite build` does: in this one, Vitest has loaded Vue's compiler in its
// development build, which writes other output.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))
const out = mkdtempSync(join(tmpdir(), 'flashotp-dist-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? files(p) : [p]
  })
}

it('web/dist is the build of these sources (run make ui and commit web/dist if not)', () => {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' }
  delete env.VITEST
  execFileSync(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'error', '--outDir', out, '--emptyOutDir'], { cwd: root, env, stdio: 'pipe' })
  const built = files(out).map((f) => relative(out, f)).sort()
  const committed = files(join(root, 'dist')).map((f) => relative(join(root, 'dist'), f)).sort()
  expect(committed).toEqual(built)
  for (const f of built) expect(readFileSync(join(root, 'dist', f)).equals(readFileSync(join(out, f))), f).toBe(true)
}, 60_000)
