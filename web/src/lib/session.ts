// The signed-in operator, shared by every page: who, what role, the CSRF token; and signing in and out.
import { reactive } from 'vue'
import { api, setCsrfToken, request } from './api'

/** The answer of /console/api/session. */
export interface SessionAnswer {
  operator: { name: string; role: 'admin' | 'viewer' | string }
  csrf_token: string
  expires_at: string
  idle_timeout: string
}

/** Credentials: the admin token, or an operator's name and password. */
export type Credentials = { token: string } | { username: string; password: string }

/** session is the page's view of the engine's session; operator is null when signed out. */
export const session = reactive({
  operator: null as SessionAnswer['operator'] | null,
  expiresAt: '',
  /** Why the page went back to sign-in (a stale session), shown there once. */
  notice: '',
  /** checked is true once the page asked the engine whether a session exists. */
  checked: false,
})

/** canChange says whether the operator may change things (viewers only look; the engine refuses them too). */
export function canChange(): boolean {
  return session.operator?.role === 'admin'
}

function keep(a: SessionAnswer): void {
  session.operator = a.operator
  session.expiresAt = a.expires_at
  session.notice = ''
  setCsrfToken(a.csrf_token)
}

/** signIn exchanges credentials for a session cookie; it throws ApiError (401, 429) when refused. */
export async function signIn(c: Credentials): Promise<void> {
  keep(await request<SessionAnswer>('POST', '/session', c))
}

/** restore asks for the current session (after a reload); false when there is none. */
export async function restore(): Promise<boolean> {
  try {
    keep(await api.get<SessionAnswer>('/session'))
    return true
  } catch {
    forget(session.notice)
    return false
  } finally {
    session.checked = true
  }
}

/** signOut ends the session on the engine (best effort) and here. */
export async function signOut(): Promise<void> {
  try {
    await api.del('/session')
  } finally {
    forget()
  }
}

/** forget drops the session on this page only (the engine already said it is gone). */
export function forget(notice = ''): void {
  session.operator = null
  session.expiresAt = ''
  session.notice = notice
  setCsrfToken('')
}
