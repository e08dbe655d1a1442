import { describe, expect, it } from 'vitest'
import { formOf, patchOf } from './settings'
import type { App } from './types'

const app: App = {
  id: 'shop', code_length: 4, ttl: '5m0s', max_attempts: 5, resend_cooldown: '30s', max_resends: 3, pools: ['demo'],
  allowed_countries: ['GB'], blocked_number_types: [], rate_limits: { recipient: { limit: 3, window: '15m0s' }, app: { limit: 100, window: '1s' } },
  webhook_url: '', pre_send_hook: null, channels: ['flashcall', 'sms'], workflow: [], locale: 'en', android_app_hash: '',
  templates: { sms: { en: 'Code {{.Code}}' }, voice: { en: 'Your code is {{.Code}}' } }, code_lengths: {}, from_config: false,
  created_at: '', updated_at: '',
}

describe('the settings patch', () => {
  it('is empty when nothing changed', () => {
    expect(patchOf(app, formOf(app))).toEqual({})
  })

  it('carries only what changed, typed as the API wants it', () => {
    const f = formOf(app)
    f.ttl = '10m'
    f.max_attempts = '7'
    f.allowed_countries = 'gb, us'
    f.channels = 'flashcall sms voice'
    f.workflow = '[{"channel":"flashcall","timeout":"20s"},{"channel":"sms"}]'
    f.rate_limits = JSON.stringify({ recipient: { limit: 5, window: '15m0s' }, app: { limit: 100, window: '1s' } })
    expect(patchOf(app, f)).toEqual({
      ttl: '10m',
      max_attempts: 7,
      allowed_countries: ['GB', 'US'],
      channels: ['flashcall', 'sms', 'voice'],
      workflow: [{ channel: 'flashcall', timeout: '20s' }, { channel: 'sms' }],
      rate_limits: { recipient: { limit: 5, window: '15m0s' } },
    })
  })

  it('sends a template channel that was taken out as null, and a changed one whole', () => {
    const f = formOf(app)
    f.templates = JSON.stringify({ sms: { en: 'Code {{.Code}}', fr: 'Code {{.Code}}' } })
    expect(patchOf(app, f)).toEqual({ templates: { sms: { en: 'Code {{.Code}}', fr: 'Code {{.Code}}' }, voice: null } })
  })

  it('names the field it cannot read', () => {
    const f = formOf(app)
    f.code_length = 'four'
    expect(() => patchOf(app, f)).toThrow(/^code_length/)
    const g = formOf(app)
    g.workflow = '{"channel":"sms"}'
    expect(() => patchOf(app, g)).toThrow(/^workflow: a list/)
    const h = formOf(app)
    h.templates = '{sms'
    expect(() => patchOf(app, h)).toThrow(/^templates: not JSON/)
  })
})
