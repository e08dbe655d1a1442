import { createApp, h } from 'vue'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { forget, session } from './lib/session'
import { byTestId, fakeEngine, mount, settle } from './test/mount'
import App from './App.vue'

afterEach(() => {
  vi.unstubAllGlobals()
  forget()
  document.body.innerHTML = ''
})

describe('the header', () => {
  it('names the operator and role, opens the menu at a phone width, and signs out with the CSRF token', async () => {
    session.operator = { name: 'vera', role: 'viewer' }
    const asked = fakeEngine({ 'DELETE /console/api/session': [204, null] })
    // The test router (every page a stub) at /live, and App mounted on it.
    const { router } = await mount({ render: () => null }, '/live')
    const host = document.createElement('div')
    document.body.appendChild(host)
    createApp({ render: () => h(App) }).use(router).mount(host)
    await settle()
    expect(byTestId(host, 'operator-name')[0].textContent).toBe('vera')
    expect(byTestId(host, 'operator-role')[0].textContent).toBe('viewer')
    expect(byTestId(host, 'nav-live')[0].getAttribute('href')).toBe('/console/live')
    const toggle = byTestId(host, 'nav-toggle')[0]
    expect(toggle.getAttribute('aria-expanded')).toBe('false')
    toggle.click()
    await settle()
    expect(toggle.getAttribute('aria-expanded')).toBe('true')
    expect(host.querySelector('nav')!.classList.contains('open')).toBe(true)
    await router.push('/pools')
    await settle()
    expect(host.querySelector('nav')!.classList.contains('open')).toBe(false) // a new page closes the menu
    byTestId(host, 'sign-out')[0].click()
    await settle()
    expect(asked.map((a) => a.method + ' ' + a.url)).toContain('DELETE /console/api/session')
    expect(session.operator).toBeNull()
    expect(router.currentRoute.value.name).toBe('signin')
    expect(byTestId(host, 'operator-name').length).toBe(0)
  })
})
