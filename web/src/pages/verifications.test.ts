import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { forget, session } from '../lib/session'
import { byTestId, fakeEngine, mount, settle, type } from '../test/mount'
import Verifications from './Verifications.vue'

const item = (id: string) => ({ verification_id: id, app_id: 'demo', recipient: '+44•••••••23', channel: 'flashcall', status: 'failed', created_at: '2026-12-06T00:00:00Z' })

beforeEach(() => {
  session.operator = { name: 'admin', role: 'admin' }
})
afterEach(() => {
  vi.unstubAllGlobals()
  forget()
  document.body.innerHTML = ''
})

describe('Verifications', () => {
  it('filters from the URL, pages by cursor both ways, and shows masked rows with their IDs', async () => {
    const asked = fakeEngine({
      'GET /console/api/admin/apps': [200, { apps: [{ id: 'demo' }] }],
      'GET /console/api/verifications': (a) => {
        const q = new URL(a.url, 'http://x').searchParams
        return q.get('cursor') === 'c2' ? [200, { items: [item('otp_3')], next_cursor: '' }] : [200, { items: [item('otp_1'), item('otp_2')], next_cursor: 'c2' }]
      },
    })
    const { el } = await mount(Verifications, '/verifications?status=failed&recipient=%2B447700900123')
    const lists = () => asked.filter((a) => a.url.startsWith('/console/api/verifications')).map((a) => Object.fromEntries(new URL(a.url, 'http://x').searchParams))
    expect(lists()[0]).toEqual({ status: 'failed', recipient: '+447700900123', limit: '50' })
    expect(byTestId(el, 'verification-row').map((r) => r.dataset.id)).toEqual(['otp_1', 'otp_2'])
    expect(byTestId(el, 'masked-number')[0].textContent).toBe('+44•••••••23')
    byTestId(el, 'page-older')[0].click()
    await settle()
    expect(lists().at(-1)?.cursor).toBe('c2')
    expect(byTestId(el, 'verification-row').map((r) => r.dataset.id)).toEqual(['otp_3'])
    expect((byTestId(el, 'page-older')[0] as HTMLButtonElement).disabled).toBe(true)
    byTestId(el, 'page-newer')[0].click()
    await settle()
    expect(lists().at(-1)?.cursor).toBeUndefined()
    expect(byTestId(el, 'verification-row').length).toBe(2)
  })

  it('a new search goes into the URL and starts from the first page; nothing found says what to do', async () => {
    const asked = fakeEngine({
      'GET /console/api/admin/apps': [200, { apps: [] }],
      'GET /console/api/verifications': [200, { items: [], next_cursor: '' }],
    })
    const { el, router } = await mount(Verifications, '/verifications')
    type(byTestId(el, 'filter-recipient')[0], '+14155552671')
    byTestId(el, 'verifications-filters')[0].dispatchEvent(new Event('submit'))
    await settle()
    expect(router.currentRoute.value.query).toEqual({ recipient: '+14155552671' })
    expect(asked.at(-1)?.url).toBe('/console/api/verifications?recipient=%2B14155552671&limit=50')
    expect(byTestId(el, 'empty')[0].textContent).toContain('clear a filter')
  })
})
