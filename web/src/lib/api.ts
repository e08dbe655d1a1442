// The console's only way to the engine: same-origin requests under /console/api, the CSRF token on every
// state-changing call, and one place that notices a stale session (401) and sends the page back to sign-in.

/** Where every route of the console's API lives; relative to the page's origin, never another host. */
export const API_BASE = '/console/api'

/** An answer of the engine that was not 2xx, with the API's error code and message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

type Handlers = { unauthorized?: (path: string) => void }

let csrfToken = ''
const handlers: Handlers = {}

/** setCsrfToken keeps the token of the session answer for the non-GET calls that follow. */
export function setCsrfToken(token: string): void {
  csrfToken = token
}

/** onUnauthorized is called when any call but signing in answers 401: the session is gone. */
export function onUnauthorized(fn: ((path: string) => void) | undefined): void {
  handlers.unauthorized = fn
}

/** Query values left empty are not sent, so a filter form can pass every field. */
export type Query = Record<string, string | number | undefined | null>

/** url builds an API path with its query (empty values dropped), e.g. url('/reports', {format: 'csv'}). */
export function url(path: string, query: Query = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue
    q.set(k, String(v))
  }
  const s = q.toString()
  return API_BASE + path + (s ? '?' + s : '')
}

/** request calls the engine; it resolves to the decoded JSON (undefined for 204) or throws ApiError. */
export async function request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken
  let payload: string | undefined
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json'
    payload = JSON.stringify(body)
  }
  let res: Response
  try {
    res = await fetch(url(path, query), { method, headers, body: payload, credentials: 'same-origin' })
  } catch {
    throw new ApiError(0, 'network', 'The engine did not answer: is it running? Check your connection and try again.')
  }
  if (res.status === 401 && path !== '/session') handlers.unauthorized?.(path)
  if (res.status === 204) return undefined as T
  const text = await res.text()
  let data: unknown = undefined
  if (text) {
    try {
      data = JSON.parse(text)
    } catch {
      if (res.ok) throw new ApiError(res.status, 'bad_answer', 'The engine answered something that is not JSON.')
    }
  }
  if (!res.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | undefined)?.error
    throw new ApiError(res.status, err?.code ?? 'http_' + res.status, err?.message ?? `${res.status} ${res.statusText}`)
  }
  return data as T
}

/** The verbs, for brevity at the call sites. */
export const api = {
  get: <T>(path: string, query?: Query) => request<T>('GET', path, undefined, query),
  post: <T>(path: string, body?: unknown) => request<T>('POST', path, body),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  del: <T>(path: string, body?: unknown) => request<T>('DELETE', path, body),
}

/** describe turns any thrown value into a sentence for an error banner. */
export function describe(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 403 && e.code === 'forbidden') return 'Not allowed: ' + e.message + ' (a viewer may only look).'
    if (e.status === 429) return 'Too many tries: ' + e.message + '. Wait a minute and try again.'
    return e.message
  }
  return e instanceof Error ? e.message : String(e)
}
