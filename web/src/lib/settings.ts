// The app settings form: what it shows of an app, and the PATCH body of what the operator changed.
import { parseJSON, splitList } from './lists'
import type { App } from './types'

/** The form's fields, all text so inputs can hold anything until saved. */
export interface SettingsForm {
  pools: string
  channels: string
  ttl: string
  code_length: string
  max_attempts: string
  resend_cooldown: string
  max_resends: string
  allowed_countries: string
  webhook_url: string
  locale: string
  workflow: string
  templates: string
  rate_limits: string
}

/** formOf fills the form from an app. */
export function formOf(a: App): SettingsForm {
  return {
    pools: (a.pools ?? []).join(', '),
    channels: (a.channels ?? []).join(', '),
    ttl: a.ttl,
    code_length: String(a.code_length),
    max_attempts: String(a.max_attempts),
    resend_cooldown: a.resend_cooldown,
    max_resends: String(a.max_resends),
    allowed_countries: (a.allowed_countries ?? []).join(', '),
    webhook_url: a.webhook_url ?? '',
    locale: a.locale ?? '',
    workflow: JSON.stringify(a.workflow ?? [], null, 2),
    templates: JSON.stringify(a.templates ?? {}, null, 2),
    rate_limits: JSON.stringify(a.rate_limits ?? {}, null, 2),
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)

function int(field: string, s: string): number {
  const n = Number(s.trim())
  if (!Number.isInteger(n)) throw new Error(`${field}: a whole number, not "${s}"`)
  return n
}

/** patchOf is the PATCH body of the fields that differ from the app: lists and JSON compared by value; a
 * template channel left out of the JSON is sent as null (the API removes it), since templates are replaced
 * per channel. It throws naming the field when one cannot be read. */
export function patchOf(a: App, f: SettingsForm): Record<string, unknown> {
  const p: Record<string, unknown> = {}
  const list = (k: 'pools' | 'channels', v: string[]) => !same(a[k] ?? [], v) && (p[k] = v)
  list('pools', splitList(f.pools))
  list('channels', splitList(f.channels))
  const countries = splitList(f.allowed_countries).map((c) => c.toUpperCase())
  if (!same(a.allowed_countries ?? [], countries)) p.allowed_countries = countries
  for (const k of ['ttl', 'resend_cooldown', 'webhook_url', 'locale'] as const) if ((f[k] ?? '').trim() !== (a[k] ?? '')) p[k] = f[k].trim()
  for (const k of ['code_length', 'max_attempts', 'max_resends'] as const) {
    const n = int(k, f[k])
    if (n !== a[k]) p[k] = n
  }
  const workflow = parseJSON('workflow', f.workflow) ?? []
  if (!Array.isArray(workflow)) throw new Error('workflow: a list of steps, e.g. [{"channel":"flashcall","timeout":"20s"},{"channel":"sms"}]')
  if (!same(a.workflow ?? [], workflow)) p.workflow = workflow
  const templates = (parseJSON('templates', f.templates) ?? {}) as Record<string, unknown>
  if (typeof templates !== 'object' || Array.isArray(templates)) throw new Error('templates: an object, e.g. {"sms": {"en": "Your code is {{.Code}}"}}')
  const tp: Record<string, unknown> = {}
  for (const ch of new Set([...Object.keys(a.templates ?? {}), ...Object.keys(templates)])) {
    const was = (a.templates ?? {})[ch]
    const now = templates[ch]
    if (now === undefined) tp[ch] = null
    else if (!same(was, now)) tp[ch] = now
  }
  if (Object.keys(tp).length) p.templates = tp
  const limits = parseJSON('rate_limits', f.rate_limits) ?? {}
  if (typeof limits !== 'object' || Array.isArray(limits)) throw new Error('rate_limits: an object, e.g. {"recipient": {"limit": 3, "window": "15m"}}')
  const lp: Record<string, unknown> = {}
  for (const [scope, v] of Object.entries(limits as Record<string, unknown>)) if (!same((a.rate_limits ?? {})[scope], v)) lp[scope] = v
  if (Object.keys(lp).length) p.rate_limits = lp
  return p
}
