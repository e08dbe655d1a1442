import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { setCsrfToken } from '../lib/api'
import { forget, session } from '../lib/session'
import { byTestId, fakeEngine, mount, settle, type } from '../test/mount'
import Pools from './Pools.vue'
import Trunks from './Trunks.vue'
import SignIn from './SignIn.vue'
import Verification from './Verification.vue'
import TimeText from '../components/TimeText.vue'
import { createApp, h } from 'vue'

const poolsReport = {
  pools: [
    {
      name: 'demo', cooldown: '24h0m0s', quarantine_for: '24h0m0s', quarantine_codes: [403], quarantine_after: 3, from_config: true,
      entries: [{ id: 'e1', numbers: ['+44207946XXXX'], weight: 1, enabled: true }],
      entry_uses: { e1: 7 },
      quarantine: {
        'entry:e1': { until: '2026-12-07T00:00:00Z', since: '2026-12-06T00:00:00Z', rejections: 3, reason: 'trunk answered 403', manual: false, pool: 'demo', entry: 'e1' },
        'cli:+44207946****': { until: '2026-12-07T00:00:00Z', since: '2026-12-06T00:10:00Z', rejections: 1, reason: 'carrier complaint', manual: true, pool: 'demo', entry: 'e1', cli: '+44207946****' },
      },
    },
  ],
  apps: [{ app: 'demo', code_length: 4, pools: ['demo'], spaces: { '*': { codes: 10000, bits: 13.3 } } }],
}

beforeEach(() => {
  setCsrfToken('csrf-1')
  session.operator = { name: 'admin', role: 'admin' }
  session.checked = true
})
afterEach(() => {
  vi.unstubAllGlobals()
  forget()
  document.body.innerHTML = ''
})

describe('Pools', () => {
  it('lists quarantined numbers with why, and releases an entry with the CSRF token', async () => {
    const asked = fakeEngine({ 'GET /console/api/admin/pools': [200, poolsReport], 'POST /console/api/admin/pools/demo/release': [204, null] })
    const { el } = await mount(Pools, '/pools')
    const rows = byTestId(el, 'pool-quarantined-row')
    expect(rows.map((r) => r.dataset.kind)).toEqual(['cli', 'entry']) // newest first
    expect(rows[1].textContent).toContain('trunk answered 403')
    expect(el.textContent).toContain('13.3')
    byTestId(rows[1], 'pool-release')[0].click()
    await settle()
    const post = asked.find((a) => a.method === 'POST')!
    expect(post.url).toBe('/console/api/admin/pools/demo/release')
    expect(post.body).toEqual({ entry: 'e1' })
    expect(post.headers['X-CSRF-Token']).toBe('csrf-1')
    expect(asked.filter((a) => a.url === '/console/api/admin/pools').length).toBe(2) // reloaded after
  })

  it('asks for the whole caller ID before releasing a masked one', async () => {
    const asked = fakeEngine({ 'GET /console/api/admin/pools': [200, poolsReport], 'POST /console/api/admin/pools/demo/release': [204, null] })
    const { el } = await mount(Pools, '/pools')
    const row = byTestId(el, 'pool-quarantined-row')[0]
    byTestId(row, 'pool-release')[0].click()
    await settle()
    const input = byTestId(el, 'pool-release-cli')[0] as HTMLInputElement
    expect(input.value).toBe('')
    expect(input.placeholder).toBe('+44207946****')
    byTestId(el, 'pool-release-confirm')[0].click()
    await settle()
    expect(asked.some((a) => a.method === 'POST')).toBe(false)
    expect(byTestId(el, 'error-banner')[0].textContent).toContain('whole caller ID')
    type(input, '+4420794612') // two digits short of the masked +44207946****
    byTestId(el, 'pool-release-confirm')[0].click()
    await settle()
    expect(asked.some((a) => a.method === 'POST')).toBe(false)
    type(input, '+442079461234')
    byTestId(el, 'pool-release-confirm')[0].click()
    await settle()
    expect(asked.find((a) => a.method === 'POST')?.body).toEqual({ cli: '+442079461234' })
  })

  it('shows a viewer no change buttons', async () => {
    session.operator = { name: 'ann', role: 'viewer' }
    fakeEngine({ 'GET /console/api/admin/pools': [200, poolsReport] })
    const { el } = await mount(Pools, '/pools')
    expect(byTestId(el, 'pool-quarantined-row').length).toBe(2)
    expect(byTestId(el, 'pool-release').length).toBe(0)
    expect(byTestId(el, 'pool-add-entry').length).toBe(0)
    expect(byTestId(el, 'pool-quarantine').length).toBe(0)
  })

  it('says what to do when the engine refuses', async () => {
    fakeEngine({ 'GET /console/api/admin/pools': [503, { error: { code: 'unavailable', message: 'store unavailable' } }] })
    const { el } = await mount(Pools, '/pools')
    expect(byTestId(el, 'error-banner')[0].textContent).toContain('store unavailable')
  })
})

describe('Sign-in', () => {
  it('exchanges the token for a session and goes to Live', async () => {
    session.operator = null
    const asked = fakeEngine({
      'POST /console/api/session': [200, { operator: { name: 'admin', role: 'admin' }, csrf_token: 'fresh', expires_at: '2026-12-06T12:00:00Z', idle_timeout: '30m' }],
    })
    const { el, router } = await mount(SignIn, '/')
    type(byTestId(el, 'signin-token')[0], 's3cret')
    byTestId(el, 'signin-form')[0].dispatchEvent(new Event('submit'))
    await settle()
    expect(asked[0].body).toEqual({ token: 's3cret' })
    expect(asked[0].headers['Content-Type']).toBe('application/json')
    expect(session.operator).toEqual({ name: 'admin', role: 'admin' })
    expect(router.currentRoute.value.name).toBe('live')
  })

  it('says the token is wrong on a 401, and stays', async () => {
    session.operator = null
    fakeEngine({ 'POST /console/api/session': [401, { error: { code: 'unauthorized', message: 'unauthorized' } }] })
    const { el, router } = await mount(SignIn, '/')
    type(byTestId(el, 'signin-token')[0], 'wrong')
    byTestId(el, 'signin-form')[0].dispatchEvent(new Event('submit'))
    await settle()
    expect(byTestId(el, 'error-banner')[0].textContent).toContain('admin token')
    expect(router.currentRoute.value.name).toBe('signin')
    expect(session.operator).toBeNull()
  })

  it('shows why a stale session came back here', async () => {
    session.operator = null
    session.notice = 'Your session has ended'
    fakeEngine({})
    const { el } = await mount(SignIn, '/')
    expect(byTestId(el, 'signin-notice')[0].textContent).toContain('Your session has ended')
  })
})

describe('Verification timeline', () => {
  it('shows the masked number, and the whole one after reveal', async () => {
    const asked = fakeEngine({
      'GET /console/api/verifications/otp_1': [200, {
        verification: { verification_id: 'otp_1', app_id: 'demo', recipient: '+44•••••••23', channel: 'flashcall', status: 'pending', created_at: '2026-12-06T00:00:00Z',
          steps: [{ channel: 'flashcall', state: 'failed', reason: 'busy', sip_code: 486, trunk: 'carrier' }] },
        events: [{ type: 'call_failed', at: '2026-12-06T00:00:01Z', sip_code: 486, trunk: 'carrier', reason: 'busy' }],
        attempts: [],
        webhooks: [],
      }],
      'POST /console/api/verifications/otp_1/reveal': [200, { recipient: '+447700900123' }],
    })
    const { el } = await mount(Verification, '/verifications/otp_1', '/verifications/:id')
    expect(byTestId(el, 'masked-number')[0].textContent).toBe('+44•••••••23')
    const step = byTestId(el, 'timeline-step')[0].textContent
    expect(step).toContain('busy')
    expect(step).toContain('486')
    expect(step).toContain('carrier')
    byTestId(el, 'reveal')[0].click()
    await settle()
    expect(byTestId(el, 'revealed-number')[0].textContent).toBe('+447700900123')
    expect(asked.at(-1)?.headers['X-CSRF-Token']).toBe('csrf-1')
    expect(byTestId(el, 'reveal').length).toBe(0)
  })
})

describe('Verification timeline of an inbound call', () => {
  it('shows the number to call, the step delivered by the trunk and the matched call', async () => {
    fakeEngine({
      'GET /console/api/verifications/otp_2': [200, {
        verification: { verification_id: 'otp_2', app_id: 'demo', recipient: '+44•••••••23', channel: 'inbound', status: 'approved', created_at: '2026-12-06T00:00:00Z',
          dial_number: '+442079461123',
          steps: [{ channel: 'inbound', state: 'delivered', trunk: 'carrier', sent_at: '2026-12-06T00:00:00Z', delivered_at: '2026-12-06T00:00:09Z' }] },
        events: [{ type: 'inbound_call_matched', at: '2026-12-06T00:00:09Z', channel: 'inbound', trunk: 'carrier' }],
        attempts: [],
        webhooks: [],
      }],
    })
    const { el } = await mount(Verification, '/verifications/otp_2', '/verifications/:id')
    expect(byTestId(el, 'timeline-dial-number')[0].textContent).toBe('+442079461123')
    const step = byTestId(el, 'timeline-step')[0].textContent
    expect(step).toContain('inbound')
    expect(step).toContain('delivered')
    expect(step).toContain('carrier')
    expect(byTestId(el, 'timeline-event')[0].textContent).toContain('inbound_call_matched')
  })
})

describe('Trunks', () => {
  it('shows a registered trunk and one whose registration fails', async () => {
    const trunk = (name: string, registration: object) => ({
      name, address: '127.0.0.1:5080', transport: 'udp', up: true, options_rtt_ms: null, last_probe_at: null, last_probe_status: 0,
      in_flight: 0, max_calls: 0, cps: 0, max_cps: 0, calls: { missed: 0, answered: 0, failed: 0 }, failovers: 0, registration,
    })
    fakeEngine({
      'GET /console/api/trunks': [200, { trunks: [
        trunk('carrier', { registered: true, until: '2026-12-06T00:10:00Z', error: '' }),
        trunk('backup', { registered: false, until: null, error: 'register with 127.0.0.1:5090: 403 Forbidden' }),
      ] }],
    })
    const { el } = await mount(Trunks, '/trunks')
    const regs = byTestId(el, 'trunk-registration').map((e) => e.textContent ?? '')
    expect(regs[0]).toContain('registered')
    expect(regs[0]).toContain('until')
    expect(regs[1]).toContain('not registered: register with 127.0.0.1:5090: 403 Forbidden')
  })
})

describe('TimeText', () => {
  it('shows local time with UTC in the title', () => {
    const el = document.createElement('div')
    createApp({ render: () => h(TimeText, { at: '2026-12-06T00:20:58Z' }) }).mount(el)
    const t = el.querySelector('time')!
    expect(t.getAttribute('title')).toBe('2026-12-06 00:20:58.000 UTC')
    expect(t.getAttribute('datetime')).toBe('2026-12-06T00:20:58.000Z')
    const d = new Date('2026-12-06T00:20:58Z')
    expect(t.textContent).toContain(`${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:58`)
  })
})
