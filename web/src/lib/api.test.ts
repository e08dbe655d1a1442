import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { api, ApiError, describe as say, onUnauthorized, request, setCsrfToken, url } from './api'

type Call = { url: string; init: RequestInit }
let calls: Call[]
let answer: () => Response

beforeEach(() => {
  calls = []
  answer = () => new Response('{}', { status: 200, headers: { 'Content-Type': 'application/json' } })
  vi.stubGlobal('fetch', async (u: string, init: RequestInit) => {
    calls.push({ url: u, init })
    return answer()
  })
  setCsrfToken('')
  onUnauthorized(undefined)
})
afterEach(() => vi.unstubAllGlobals())

const header = (c: Call, name: string) => (c.init.headers as Record<string, string>)[name]

describe('CSRF', () => {
  it('sends the session token on every non-GET and never on a GET', async () => {
    setCsrfToken('tok-1')
    await api.get('/live')
    await api.post('/admin/apps', { id: 'a' })
    await api.patch('/admin/apps/a', { ttl: '1m' })
    await api.put('/admin/pools/p', { entries: [] })
    await api.del('/admin/apps/a/keys/k')
    expect(header(calls[0], 'X-CSRF-Token')).toBeUndefined()
    expect(calls.slice(1).map((c) => [c.init.method, header(c, 'X-CSRF-Token')])).toEqual([
      ['POST', 'tok-1'], ['PATCH', 'tok-1'], ['PUT', 'tok-1'], ['DELETE', 'tok-1'],
    ])
    expect(header(calls[1], 'Content-Type')).toBe('application/json')
    expect(calls[1].init.body).toBe('{"id":"a"}')
    expect(calls[1].init.credentials).toBe('same-origin')
  })

  it('a POST without a body sends none', async () => {
    setCsrfToken('t')
    await api.post('/admin/apps/a/keys')
    expect(calls[0].init.body).toBeUndefined()
    expect(header(calls[0], 'Content-Type')).toBeUndefined()
    expect(header(calls[0], 'X-CSRF-Token')).toBe('t')
  })
})

describe('answers', () => {
  it('a 401 from a call reports the stale session; from signing in it does not', async () => {
    const seen: string[] = []
    onUnauthorized((p) => seen.push(p))
    answer = () => new Response('{"error":{"code":"unauthorized","message":"sign in"}}', { status: 401 })
    await expect(api.get('/verifications')).rejects.toMatchObject({ status: 401, code: 'unauthorized', message: 'sign in' })
    await expect(request('POST', '/session', { token: 'x' })).rejects.toBeInstanceOf(ApiError)
    expect(seen).toEqual(['/verifications'])
  })

  it('decodes JSON, 204 as undefined, and errors into ApiError', async () => {
    answer = () => new Response('{"a":1}', { status: 200 })
    expect(await api.get('/x')).toEqual({ a: 1 })
    answer = () => new Response(null, { status: 204 })
    expect(await api.del('/session')).toBeUndefined()
    answer = () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' })
    await expect(api.get('/x')).rejects.toMatchObject({ status: 502, code: 'http_502', message: '502 Bad Gateway' })
    answer = () => new Response('{"error":{"code":"forbidden","message":"viewers may only look"}}', { status: 403 })
    const e = await api.post('/admin/apps', {}).catch((x) => x)
    expect(say(e)).toContain('viewers may only look')
    expect(say(e)).toContain('viewer')
  })

  it('a network failure says what to do', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    await expect(api.get('/live')).rejects.toMatchObject({ status: 0, code: 'network' })
  })
})

describe('url', () => {
  it('stays under /console/api and drops empty values, encoding the rest', () => {
    expect(url('/verifications', { app_id: '', recipient: '+4477', limit: 50, cursor: undefined })).toBe('/console/api/verifications?recipient=%2B4477&limit=50')
    expect(url('/live')).toBe('/console/api/live')
  })
})
